"""Resolving a config against the registry: names, options, backend support."""

from __future__ import annotations

import keras
import pytest

import kplug
from kplug.config import parse_config
from kplug.resolve import resolve

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
