"""Run config: loading from YAML / JSON / TOML, round trips, and error messages for bad configs."""

from __future__ import annotations

import json

import pytest
import yaml

from kplug.config.schema import RunConfig, dump_config, load_config, parse_config
from kplug.errors import ConfigError

MINIMAL = {
    "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
    "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
}


def test_minimal_config_gets_defaults():
    config = parse_config(MINIMAL)
    assert config.seed == 0
    assert config.train.resolved_stages()[0].epochs == 1
    assert config.precision.policy == "float32"
    assert config.distribution.name == "auto"
    assert str(config.run_dir()) == "runs/run"


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_every_file_format_loads_the_same_config(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(MINIMAL))
    elif suffix == ".json":
        path.write_text(json.dumps(MINIMAL))
    else:
        path.write_text(
            '[data]\nsource = "idx"\n[data.options]\nimages = "a.gz"\nlabels = "b.gz"\n'
            '[model.backbone]\nname = "mlp"\n[[model.heads]]\nname = "classification"\n'
        )
    assert load_config(path) == parse_config(MINIMAL)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = parse_config(
        {
            **MINIMAL,
            "name": "digits",
            "seed": 7,
            "data": {
                **MINIMAL["data"],
                "where": {"label": [5, 6]},
                "limit": 100,
                "split": {"validation": 0.1},
            },
            "model": {
                "backbone": {
                    "name": "small-cnn",
                    "init": {"from": "runs/pre", "map": {"backbone/(.*)": "backbone/\\1"}},
                },
                "heads": [{"name": "classification", "id": "digits"}],
            },
            "train": {
                "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 1, "learning_rate": 1e-4}]
            },
        }
    )
    dump_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert config.model.backbone.init.from_ == "runs/pre"


def test_arrays_are_summarised_when_written():
    import numpy as np

    config = parse_config({**MINIMAL, "data": {"source": "arrays", "options": {"x": np.zeros((4, 2))}}})
    assert config.to_dict()["data"]["options"]["x"] == "<array float64 (4, 2)>"


BAD_CONFIGS = [
    # (config change, text the message must contain)
    ({"train": {"optimizer": {"learning_rate": -0.1}}}, "train.optimizer.learning_rate = -0.1"),
    ({"train": {"optimizer": {"name": "adamm"}}}, "train.optimizer.name = 'adamm'"),
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


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: idx\n  options: {images: [unclosed\n")
    with pytest.raises(ConfigError, match=r"run.yaml: YAML syntax error.*line"):
        load_config(path)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("run.json", "{bad json", "JSON syntax error at line 1"),
        ("run.toml", "a = = 1", "TOML syntax error"),
        ("run.yaml", "- just\n- a list\n", "must be a mapping"),
        ("run.ini", "x=1", "use .yaml, .yml, .json or .toml"),
    ],
)
def test_unreadable_config_files(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope.yaml")


def test_yaml_loader_refuses_python_tags(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("data: !!python/object/apply:os.system ['echo pwned > pwned.txt']\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_config_can_be_built_in_python():
    config = RunConfig.model_validate(MINIMAL)
    assert load_config(config) is config


@pytest.mark.parametrize("section", ["callbacks", "loggers"])
def test_a_component_list_takes_a_bare_name_or_name_and_options(section):
    config = parse_config(
        {**MINIMAL, section: ["early-stopping", {"name": "tensorboard", "options": {"a": 1}}]}
    )
    entries = [(item.name, item.options) for item in getattr(config, section)]
    assert entries == [("early-stopping", {}), ("tensorboard", {"a": 1})]


def test_a_stage_learning_rate_moves_to_its_optimizer_settings():
    """The older ``stages[].learning_rate`` loads into ``stages[].optimizer.learning_rate``, silently."""
    import warnings

    stages = [
        {"epochs": 1, "learning_rate": 1e-4},
        {"epochs": 1, "learning_rate": 2e-4, "optimizer": {"name": "sgd", "learning_rate": 2e-4}},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = parse_config({**MINIMAL, "train": {"stages": stages}})
    assert [stage.optimizer.learning_rate for stage in config.train.stages] == [1e-4, 2e-4]
    assert config.train.stages[1].optimizer.name == "sgd"
    assert [stage.learning_rate for stage in config.train.stages] == [None, None]
    written = config.to_dict()["train"]["stages"]
    assert [stage["optimizer"]["learning_rate"] for stage in written] == [1e-4, 2e-4]
    assert all("learning_rate" not in stage for stage in written)
    assert parse_config(config.to_dict()) == config
