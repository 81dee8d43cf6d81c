"""The tune section: search-space validation and setting values at config paths."""

from __future__ import annotations

import numpy as np
import pytest

import kplug
from kplug.tune.space import apply_params, path_parts, with_value


def test_paths_with_list_indices() -> None:
    assert path_parts("train.stages[1].learning_rate") == ["train", "stages", 1, "learning_rate"]
    assert path_parts("augment[0].options.factor") == ["augment", 0, "options", "factor"]


def test_with_value_copies_only_the_containers_on_the_path() -> None:
    x = np.zeros((3, 2))
    data = {
        "data": {"options": {"x": x}},
        "model": {"backbone": {"options": {}}},
        "train": {"stages": [{"epochs": 1}, {"epochs": 2}]},
    }
    changed = apply_params(data, {"train.stages[1].epochs": 5, "model.backbone.options.units": [8]})
    assert changed["train"]["stages"][1]["epochs"] == 5 and data["train"]["stages"][1]["epochs"] == 2
    assert changed["data"]["options"]["x"] is x  # arrays are shared, not copied
    with pytest.raises(kplug.ConfigError, match=r"index \[2\] does not exist \(the list has 2 entries\)"):
        with_value(data, "train.stages[2].epochs", 1)
    with pytest.raises(kplug.ConfigError, match="before 'x' is a int, not a section"):
        with_value(data, "train.stages[0].epochs.x", 1)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "a log range needs low > 0"),
        ({"x": {"type": "int", "low": 3, "high": 3}}, r"low \(3\) must be below high \(3\)"),
        ({"x": {"type": "categorical", "choices": []}}, "at least 1 item"),
        ({"x": {"type": "uniform", "low": 0, "high": 1}}, "does not match any of the expected tags"),
        ({"train..lr": {"type": "float", "low": 0, "high": 1}}, "is not a config path"),
        ({"output.dir": {"type": "categorical", "choices": ["a"]}}, "cannot be searched"),
    ],
)
def test_bad_search_spaces_are_config_errors(blobs, space, message) -> None:
    from conftest import blob_config

    x, y = blobs
    with pytest.raises(kplug.ConfigError, match=message):
        kplug.load_config(blob_config(x, y, tune={"space": space}))


def test_train_ignores_the_tune_section(blobs, plugins) -> None:
    from conftest import blob_config

    x, y = blobs
    space = {"train.batch_size": {"type": "categorical", "choices": [8, 16]}}
    result = kplug.fit(blob_config(x, y, tune={"space": space}), plugins=plugins)
    assert len(result.history["loss"]) == 3


def test_a_stage_learning_rate_path_sets_the_rate_where_it_now_lives() -> None:
    """``train.stages[i].learning_rate`` (the older place) still searches that stage's rate."""
    from kplug.config.load import parse_config
    from kplug.train.stage_plan import plan_stages
    from kplug.tune.search import trial_config

    base = parse_config(
        {
            "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
            "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
            "train": {"stages": [{"epochs": 1}, {"epochs": 1, "optimizer": {"learning_rate": 1e-3}}]},
        }
    )
    params = {"train.stages[0].learning_rate": 0.02, "train.stages[1].learning_rate": 0.01}
    trial = trial_config(base, params, None)
    assert [plan.learning_rate for plan in plan_stages(trial.train)] == [0.02, 0.01]
