"""Validation errors name the field path, the value and what is allowed."""

from __future__ import annotations

import pydantic
import pytest

from kplug.config.errors import validation_problems
from kplug.config.load import parse_config
from kplug.errors import ConfigError
from kplug.plugin.options import options_model, validate_options

MINIMAL = {
    "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
    "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
}

BAD_CONFIGS = [
    # (config change, text the message must contain)
    ({"train": {"optimizer": {"learning_rate": -0.1}}}, "train.optimizer.learning_rate = -0.1"),
    ({"train": {"optimizer": {"name": "adamm"}}}, "train.optimizer.name = 'adamm'"),
    (
        {"train": {"optimizer": {"name": "lionn"}}},
        "Did you mean 'lion'? Expected one of adadelta, adafactor,",
    ),
    (
        {"train": {"optimizer": {"name": "adam", "options": {"beta1": 0.9}}}},
        "train.optimizer.options = {'beta1': 0.9}: adam has no option 'beta1'. Did you mean 'beta_1'?",
    ),
    (
        {"train": {"optimizer": {"name": "sgd", "options": {"nesterov": "yes"}}}},
        "options.nesterov = 'yes': Input should be a valid boolean",
    ),
    (
        {"train": {"optimizer": {"options": {"learning_rate": 0.1}}}},
        "options.learning_rate: set train.optimizer.learning_rate instead of an option",
    ),
    (
        {"train": {"optimizer": {"name": "lion", "momentum": 0.5}}},
        "momentum applies to sgd and rmsprop, not lion",
    ),
    (
        {"train": {"stages": [{"epochs": 1, "optimizer": {"name": "adamm"}}]}},
        "train.stages[0].optimizer.name = 'adamm': not a Keras optimizer",
    ),
    ({"train": {"stages": [{"epochs": 1}, {"epochs": 0}]}}, "train.stages[1].epochs = 0"),
    ({"train": {"stages": [{"epochs": 1, "learning_rate": -1}]}}, "train.stages[0].learning_rate"),
    (
        {"train": {"stages": [{"epochs": 1, "optimizer": {"learning_rate": -1}}]}},
        "train.stages[0].optimizer.learning_rate = -1",
    ),
    (
        {"train": {"stages": [{"epochs": 1, "learning_rate": 1e-3, "optimizer": {"learning_rate": 2e-3}}]}},
        "train.stages[0] = {'epochs': 1, 'learning_rate': 0.001, 'optimizer': {'learning_rate': 0.002}}: "
        "learning_rate (0.001) and optimizer.learning_rate (0.002) disagree; set only optimizer.learning_rate",
    ),
    ({"train": {"batch_size": "big"}}, "train.batch_size = 'big'"),
    ({"train": {"label_smoothing": 1.5}}, "train.label_smoothing = 1.5"),
    ({"seed": -3}, "seed = -3"),
    ({"trian": {}}, "trian: unknown field. Did you mean 'train'?"),
    ({"model": {"backbone": {"name": "mlp"}, "heads": []}}, "model.heads = []"),
    (
        {"model": {"backbone": {"name": "mlp", "option": {}}, "heads": [{"name": "classification"}]}},
        "model.backbone.option: unknown field. Did you mean 'options'?",
    ),
    ({"data": {"source": "idx", "split": {"validation": 0.6, "test": 0.5}}}, "must be below 1"),
    ({"data": {"source": "idx", "limit": 0}}, "data.limit = 0"),
    (
        {
            "model": {
                "backbone": {"name": "mlp"},
                "heads": [{"name": "classification"}, {"name": "classification"}],
            }
        },
        "head ids must be unique; repeated: classification",
    ),
    ({"name": "my run!"}, "name = 'my run!'"),
    ({"train": {"stages": [{"epochs": 1, "trainable": "heads"}]}}, "train.stages[0].trainable"),
    ({"data": None}, "data = None: expected a mapping with the fields source, options"),
    (
        {"train": {"optimizer": {"name": "adam", "momentum": 0.9}}},
        "momentum applies to sgd and rmsprop, not adam",
    ),
    (
        {"train": {"epochs": 3, "stages": [{"epochs": 1}]}},
        "train.epochs is used only when train.stages is empty",
    ),
]


@pytest.mark.parametrize(("change", "expected"), BAD_CONFIGS, ids=[e for _, e in BAD_CONFIGS])
def test_bad_config_names_the_field_and_value(change, expected):
    with pytest.raises(ConfigError) as error:
        parse_config({**MINIMAL, **change})
    assert expected in str(error.value)
    assert str(error.value).startswith("Invalid run config")


def test_missing_required_section_is_named():
    with pytest.raises(ConfigError, match=r"model: required field is missing"):
        parse_config({"data": MINIMAL["data"]})


def sized_mlp(sizes: list[int] = (64,), dropout: float = 0.0):
    """A factory whose options hold a list."""


def test_component_options_name_list_items_as_the_run_config_does():
    # one formatter for both: a list item is `field[index]` with that item's value
    model = options_model(sized_mlp, "sized-mlp")
    with pytest.raises(ConfigError) as error:
        validate_options("sized-mlp", model, {"sizes": [8, "wide"]}, "model.backbone.options")
    assert str(error.value) == (
        "model.backbone.options.sizes[1] = 'wide': Input should be a valid integer, unable to parse "
        "string as an integer. sized-mlp options: sizes (list, default (64,)), dropout (float, default 0.0)."
    )


def test_run_config_and_options_problems_read_the_same():
    model = options_model(sized_mlp, "sized-mlp")
    with pytest.raises(ConfigError) as from_options:
        validate_options("sized-mlp", model, {"dropout": "high"}, "model.backbone.options")
    data = {"model": {"backbone": {"options": {"dropout": "high"}}}}
    nested_floats = pydantic.TypeAdapter(dict[str, dict[str, dict[str, dict[str, float]]]])
    with pytest.raises(pydantic.ValidationError) as raw:
        nested_floats.validate_python(data)
    line = validation_problems(raw.value, data)[0]
    assert (
        line
        == "model.backbone.options.dropout = 'high': Input should be a valid number, unable to parse string as a number"
    )
    assert str(from_options.value).startswith(line + ". sized-mlp options:")
