"""The preprocessor component: chosen by the config or the backbone, options of its own, old configs migrated."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import kplug
from kplug.config.load import parse_config
from kplug.plugin.resolve import resolve


def scaler(factor: float = 2.0, path: str | None = None, width: int = 3):
    """Multiplies the features by ``factor`` (``path`` and ``width`` only to be shared or moved)."""
    return lambda features: np.asarray(features, "float32") * factor


def dense(preprocessor: Any = None, units: int = 4, path: str | None = None) -> keras.Model:
    """A Dense backbone (``path`` shared with its preprocessor)."""
    return keras.Sequential([keras.layers.Dense(units, name="hidden")], name="dense")


class Components:
    @staticmethod
    @kplug.hookimpl
    def kplug_register_preprocessors(register):
        register("scaler", scaler)
        register("tripler", lambda factor=3.0: scaler(factor))

    @staticmethod
    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("dense", dense, preprocessor="scaler")
        register("plain", dense)
        register("orphan", dense, preprocessor="no-such-preprocessor")
        register("old-style", dense, preprocessor=scaler)  # a bare factory, as before the component kind


@pytest.fixture
def plugins() -> kplug.Plugins:
    return kplug.load_plugins([Components()], entry_points=False)


def config(backbone: str = "dense", options: dict | None = None, **model: Any):
    return parse_config(
        {
            "data": {"source": "arrays", "options": {"x": [[0.0]], "y": [0]}},
            "model": {
                "backbone": {"name": backbone, "options": options or {}},
                "heads": [{"name": "classification"}],
                **model,
            },
        }
    )


def test_the_backbone_names_its_default_and_the_config_replaces_it(plugins):
    run = resolve(config(), plugins)
    assert run.preprocessor.component.name == "scaler"
    assert run.preprocessor.options == {"factor": 2.0, "path": None, "width": 3}
    assert run.preprocessor.where == "model.preprocessor"
    chosen = resolve(config(preprocessor={"name": "tripler", "options": {"factor": 4.0}}), plugins)
    assert chosen.preprocessor.component.name == "tripler" and chosen.preprocessor.options == {"factor": 4.0}
    assert resolve(config("plain"), plugins).preprocessor is None


def test_preprocessor_options_are_validated_against_its_factory(plugins):
    bad = config(preprocessor={"name": "scaler", "options": {"factor": "big"}})
    with pytest.raises(kplug.ConfigError, match=r"model\.preprocessor\.options\.factor = 'big'"):
        resolve(bad, plugins)
    with pytest.raises(kplug.ConfigError, match="Unknown preprocessor 'scalar'. Did you mean 'scaler'"):
        resolve(config(preprocessor={"name": "scalar"}), plugins)


def test_preprocessor_options_on_the_backbone_move_to_it(plugins):
    run = resolve(config(options={"units": 8, "factor": 5.0, "width": 2}), plugins)
    assert run.backbone.options == {"units": 8, "path": None}
    assert run.preprocessor.options == {"factor": 5.0, "path": None, "width": 2}
    assert run.preprocessor.moved == ("factor", "width")


def test_an_option_both_declare_goes_to_both_unless_the_preprocessor_sets_its_own(plugins):
    run = resolve(config(options={"path": "ckpt"}), plugins)
    assert run.backbone.options["path"] == run.preprocessor.options["path"] == "ckpt"
    own = resolve(
        config(options={"path": "ckpt"}, preprocessor={"name": "scaler", "options": {"path": "v"}}), plugins
    )
    assert own.backbone.options["path"] == "ckpt" and own.preprocessor.options["path"] == "v"


def test_an_option_of_neither_lists_both_components_options(plugins):
    with pytest.raises(kplug.ConfigError) as error:
        resolve(config(options={"factr": 5.0}), plugins)
    assert str(error.value) == (
        "model.backbone.options: neither backbone 'dense' nor its preprocessor 'scaler' has an option "
        "'factr'. Did you mean 'factor'? dense options: units (int, default 4), path (str | None, default "
        "None). scaler options (model.preprocessor.options): factor (float, default 2.0), path (str | None, "
        "default None), width (int, default 3)."
    )


def test_an_option_set_on_both_sections_is_an_error(plugins):
    both = config(options={"factor": 5.0}, preprocessor={"name": "scaler", "options": {"factor": 4.0}})
    with pytest.raises(
        kplug.ConfigError, match=r"model\.backbone\.options\.factor = 5\.0: 'factor' is an option"
    ):
        resolve(both, plugins)


def test_a_moved_option_with_a_bad_value_says_where_it_came_from(plugins):
    with pytest.raises(kplug.ConfigError) as error:
        resolve(config(options={"width": "wide"}), plugins)
    assert "model.preprocessor.options.width = 'wide'" in str(error.value)
    assert str(error.value).endswith("(the preprocessor 'scaler' took width from model.backbone.options)")


def test_a_backbone_naming_an_unregistered_preprocessor_is_a_plugin_error(plugins):
    with pytest.raises(
        kplug.PluginError, match="names the preprocessor 'no-such-preprocessor'.*: scaler, tripler"
    ):
        resolve(config("orphan"), plugins)


def test_a_bare_preprocessor_factory_of_an_older_plugin_still_works(plugins):
    run = resolve(config("old-style", options={"factor": 7.0}), plugins)
    assert run.preprocessor.component.name == "old-style-preprocessor"
    assert run.preprocessor.options["factor"] == 7.0 and run.backbone.options == {"units": 4, "path": None}


def test_kplug_plugins_lists_preprocessors(plugins, capsys):
    from kplug.cli.main import main

    assert main(["plugins"], plugins=plugins) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["preprocessor", "scaler"] in [row[:2] for row in rows]
    assert ["preprocessor", "tripler"] in [row[:2] for row in rows]
