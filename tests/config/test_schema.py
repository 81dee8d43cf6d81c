"""The run config schema: defaults, sections built in Python, component lists."""

from __future__ import annotations

import pytest

from kplug.config.load import load_config, parse_config
from kplug.config.schema import RunConfig

MINIMAL = {
    "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
    "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
}


def test_MINIMAL_gets_defaults():
    config = parse_config(MINIMAL)
    assert config.seed == 0
    assert config.train.resolved_stages()[0].epochs == 1
    assert config.precision.policy == "float32"
    assert config.distribution.name == "auto"
    assert str(config.run_dir()) == "runs/run"


def test_arrays_are_summarised_when_written():
    import numpy as np

    config = parse_config({**MINIMAL, "data": {"source": "arrays", "options": {"x": np.zeros((4, 2))}}})
    assert config.to_dict()["data"]["options"]["x"] == "<array float64 (4, 2)>"


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
