"""The registry: lookup by name, unknown names list what exists, iteration order."""

from __future__ import annotations

import pytest

from kplug.errors import ConfigError, PluginError
from kplug.plugin.registry import Registry


def test_unknown_name_lists_registered_names_and_closest(plugins):
    with pytest.raises(ConfigError) as error:
        plugins.registry.get("backbone", "small-cn", where="model.backbone.name")
    message = str(error.value)
    assert message.startswith("model.backbone.name: Unknown backbone 'small-cn'.")
    assert "Did you mean 'small-cnn'?" in message
    assert "Registered backbones: keras-file, keras-model, mlp, small-cnn" in message


def test_iteration_lists_every_component_with_kind_and_provider(plugins):
    rows = [(c.kind, c.name) for c in plugins.registry]
    assert rows[0] == ("backbone", "keras-file")  # by kind, then by name
    assert ("metric", "auc") in rows
    assert ("callback", "early-stopping") in rows
    assert all(c.provider for c in plugins.registry)


def test_a_misspelt_extra_is_an_error_naming_the_accepted_ones():
    register = Registry().register_callback("dataset", "kplug-fake 1.0")
    with pytest.raises(PluginError) as error:
        register("parquet", lambda path: None, path_optoin="path")
    message = str(error.value)
    assert "kplug-fake 1.0 registered dataset 'parquet'" in message
    assert "'path_optoin'" in message and "Did you mean 'path_option'?" in message
    assert "path_option, in_memory, target_options" in message


def test_an_extra_of_another_kind_is_refused():
    register = Registry().register_callback("backbone", "kplug-fake 1.0")
    with pytest.raises(PluginError, match="A backbone accepts: preprocessor"):
        register("tiny", lambda: None, batch=True)


def test_extras_are_read_through_one_typed_accessor():
    registry = Registry()
    registry.register_callback("dataset", "kplug-fake 1.0")("parquet", lambda path: None, path_option="path")
    component = registry.get("dataset", "parquet")
    assert component.extra("path_option") == "path"
    assert component.extra("in_memory") is False  # the kind's declared default
    with pytest.raises(PluginError, match="unknown extra 'preprocessor' for a dataset"):
        component.extra("preprocessor")
