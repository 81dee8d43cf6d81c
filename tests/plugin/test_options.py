"""Component options are validated against the factory signature."""

from __future__ import annotations

import pytest

from kplug.errors import ConfigError
from kplug.plugin.options import options_model, validate_options


def tiny_mlp(input_shape: tuple[int, ...], units: int = 64, activation: str = "relu"):
    """A one-layer MLP."""


def test_misspelled_option_lists_the_valid_ones():
    model = options_model(tiny_mlp, "tiny-mlp")
    with pytest.raises(ConfigError) as error:
        validate_options("tiny-mlp", model, {"unit": 3}, "model.backbone.options")
    assert str(error.value) == (
        "model.backbone.options: tiny-mlp has no option 'unit'. Did you mean 'units'? "
        "Options: units (int, default 64), activation (str, default 'relu')."
    )


def test_wrong_type_names_option_and_value():
    model = options_model(tiny_mlp, "tiny-mlp")
    with pytest.raises(ConfigError, match=r"model.backbone.options.units = 'many'"):
        validate_options("tiny-mlp", model, {"units": "many"}, "model.backbone.options")


def test_defaults_are_filled_and_injected_arguments_hidden():
    model = options_model(tiny_mlp, "tiny-mlp")
    assert "input_shape" not in model.model_fields
    assert validate_options("tiny-mlp", model, {"units": 8}, "x") == {"units": 8, "activation": "relu"}


def test_class_factories_use_their_init():
    class Head:
        def __init__(self, num_classes: int | None = None, dropout: float = 0.0):
            pass

    model = options_model(Head, "head")
    assert list(model.model_fields) == ["num_classes", "dropout"]
