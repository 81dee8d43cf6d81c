"""The ``Model.compile`` speed settings of a run: ``train.compile``, or the recorded choice for ``auto``."""

from __future__ import annotations

from typing import Any

import keras

from kplug.config.compile_record import recorded_settings
from kplug.config.schema import RunConfig
from kplug.errors import ConfigError


def compile_options(config: RunConfig, backend: str | None = None) -> dict[str, Any]:
    """``jit_compile`` / ``steps_per_execution`` keyword arguments for ``Model.compile``.

    ``train.compile: auto`` takes what ``kplug bench --apply`` recorded for this config
    on this backend (``kplug.config.compile_record``), else nothing (Keras' defaults).
    Explicit settings are passed as given; ``jit_compile: auto`` is Keras' default.
    On torch ``jit_compile: true`` is ``torch.compile``.

    Raises:
        ConfigError: ``steps_per_execution`` > 1 on torch, where Keras runs one step per call.
    """
    backend = backend or keras.backend.backend()
    choice = config.train.compile
    if choice == "auto":
        return recorded_settings(config, backend) or {}
    settings = choice.model_dump()
    if settings["steps_per_execution"] > 1 and backend == "torch":
        raise ConfigError(
            f"train.compile.steps_per_execution = {settings['steps_per_execution']}: the torch backend "
            f"runs one step per call; use 1 there (or train.compile: auto)."
        )
    return settings
