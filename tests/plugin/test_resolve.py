"""Resolving a config against the registry: names, options, backend support."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import kplug
from kplug.config.load import parse_config
from kplug.plugin.resolve import resolve

CONFIG = {
    "data": {"source": "arrays", "options": {"x": [[0.0]], "y": [0]}},
    "model": {"backbone": {"name": "mlp", "options": {"units": [4]}}, "heads": [{"name": "classification"}]},
}


def test_every_component_is_looked_up_with_defaults_filled(plugins):
    run = resolve(parse_config(CONFIG), plugins)
    assert run.backbone.component.name == "mlp" and run.backbone.options["units"] == [4]
    assert run.backbone.options["dropout"] == 0.0
    assert run.heads[0].where == "model.heads[0]"
    assert run.precision.component.name == "float32" and run.distribution.component.name == "auto"


def test_a_component_for_other_backends_is_refused_at_validation():
    class OtherBackend:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_distributions(register):
            register("only-elsewhere", kplug.Distribution, backends=("not-a-backend",))

    plugins = kplug.load_plugins([OtherBackend()], entry_points=False)
    config = parse_config({**CONFIG, "distribution": {"name": "only-elsewhere"}})
    with pytest.raises(kplug.ConfigError) as error:
        resolve(config, plugins)
    assert str(error.value) == (
        f"distribution: distribution 'only-elsewhere' does not run on the {keras.backend.backend()} backend; "
        f"it supports not-a-backend. Set KERAS_BACKEND to one of those or choose another distribution."
    )


class RaisingComponents:
    """A callback factory raising the plugin's own ConfigError, a logger rejecting its options."""

    @staticmethod
    @kplug.hookimpl
    def kplug_register_callbacks(register):
        def own_error():
            raise kplug.ConfigError("x")

        register("own-error", own_error)

    @staticmethod
    @kplug.hookimpl
    def kplug_register_loggers(register):
        def rejecting(run_dir, run_config):
            raise ValueError("no such project")

        register("rejecting", rejecting)


def test_a_factorys_own_config_error_passes_through_unchanged():
    plugins = kplug.load_plugins([RaisingComponents()], entry_points=False)
    run = resolve(parse_config({**CONFIG, "callbacks": [{"name": "own-error"}]}), plugins)
    with pytest.raises(kplug.ConfigError) as error:
        run.callbacks[0].build()
    assert str(error.value) == "x"


def test_a_logger_error_names_the_run_config_without_showing_its_arrays():
    plugins = kplug.load_plugins([RaisingComponents()], entry_points=False)
    x = np.full((3, 2), 0.123456, dtype="float32")
    config = parse_config(
        {
            **CONFIG,
            "data": {"source": "arrays", "options": {"x": x, "y": [0, 1, 0]}},
            "loggers": ["rejecting"],
        }
    )
    run = resolve(config, plugins)
    with pytest.raises(kplug.ConfigError) as error:
        run.loggers[0].build(run_dir=Path("runs/x"), run_config=config)
    assert str(error.value) == (
        "loggers[0]: logger 'rejecting' could not be built from its options (no options) "
        f"and run_dir={Path('runs/x')!r} and run_config: no such project"
    )
