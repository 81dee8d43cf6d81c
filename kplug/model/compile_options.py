"""The ``Model.compile`` speed settings of a run: ``train.compile``, or the recorded choice for ``auto``."""

from __future__ import annotations

import warnings
from typing import Any

import keras

from kplug.config.compile_record import recorded_settings
from kplug.config.schema import RunConfig


def compile_options(config: RunConfig, backend: str | None = None) -> dict[str, Any]:
    """``jit_compile`` / ``steps_per_execution`` keyword arguments for ``Model.compile``.

    ``train.compile: auto`` takes what ``kplug bench --apply`` recorded for this config
    on this backend (``kplug.config.compile_record``), else nothing (Keras' defaults).
    Explicit settings are passed as given; ``jit_compile: auto`` is Keras' default.
    On torch ``jit_compile: true`` is ``torch.compile``.

    On torch, where Keras runs one step per call, ``steps_per_execution`` > 1 is set to 1 with a
    warning (collected into ``report.json``), so one config trains on every backend.
    """
    backend = backend or keras.backend.backend()
    choice = config.train.compile
    if choice == "auto":
        return recorded_settings(config, backend) or {}
    settings = choice.model_dump()
    if settings["steps_per_execution"] > 1 and backend == "torch":
        warnings.warn(
            f"kplug: train.compile.steps_per_execution = {settings['steps_per_execution']} applies on jax "
            f"and tensorflow; the torch backend runs one step per call, so this run uses 1.",
            UserWarning,
            stacklevel=2,
        )
        settings["steps_per_execution"] = 1
    return settings
