"""Validation and test examples given explicitly: data.validation / data.test, fit(validation_data=...)."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug


def write_csv(path, x, y):
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"f{i}" for i in range(x.shape[1])] + ["label"])
        writer.writerows([*map(float, row), int(label)] for row, label in zip(x, y, strict=True))
    return str(path)


def evaluated(result, x, y):
    """The run's model scored on (x, y) by plain Keras."""
    model = result.model
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model.evaluate(x, y, verbose=0, return_dict=True)


def test_fit_takes_validation_and_test_arrays(blobs):
    x, y = blobs
    config = blob_config(x[:160], y[:160])
    config["data"]["split"] = {}
    result = kplug.fit(config, validation_data=(x[160:200], y[160:200]), test_data=(x[200:], y[200:]))
    assert result.report["data"] | {"labels": None} == {
        "train": 160,
        "validation": 40,
        "test": 40,
        "labels": None,
    }
    assert result.metrics["split"] == "test"
    assert result.metrics["accuracy"] == pytest.approx(evaluated(result, x[200:], y[200:])["accuracy"])
    last = result.history["val_accuracy"][-1]
    assert last == pytest.approx(evaluated(result, x[160:200], y[160:200])["accuracy"])


def test_data_validation_and_test_read_their_own_files(blobs, tmp_path):
    x, y = blobs
    config = blob_config(x, y)
    config["data"] = {
        "source": "csv",
        "options": {"path": write_csv(tmp_path / "train.csv", x[:160], y[:160])},
        "validation": {"options": {"path": write_csv(tmp_path / "validation.csv", x[160:200], y[160:200])}},
        "test": {"options": {"path": write_csv(tmp_path / "test.csv", x[200:], y[200:])}},
        "where": {"label": [0, 1]},
    }
    result = kplug.fit(config)
    sizes = [int((part < 2).sum()) for part in (y[:160], y[160:200], y[200:])]  # where applies to each
    assert [result.report["data"][s] for s in ("train", "validation", "test")] == sizes
    keep = y[200:] < 2
    expected = evaluated(result, x[200:][keep], y[200:][keep])["accuracy"]
    assert kplug.evaluate(result.run_dir, split="test")["accuracy"] == pytest.approx(expected)


def test_a_class_seen_only_in_the_test_file_is_known(blobs):
    x, y = blobs
    train = y != 2
    config = blob_config(x[train], y[train])
    config["data"]["split"] = {}
    config["model"]["heads"] = [{"name": "classification"}]
    result = kplug.fit(config, test_data=(x[~train], y[~train]))
    assert result.report["data"]["labels"]["label"] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"split": {"validation": 0.2}, "validation": {"options": {}}},
            "data.validation gives the validation examples and data.split.validation",
        ),
        ({"test": {"options": {"x": np.zeros((4, 8))}}}, "data.test: its examples have no target 'label'"),
    ],
)
def test_conflicting_or_unlabelled_held_out_data_is_named(blobs, data, message):
    x, y = blobs
    config = blob_config(x, y)
    config["data"] = {"source": "arrays", "options": {"x": x, "y": y}, **data}
    with pytest.raises(kplug.KplugError, match=message):
        kplug.fit(config)


def test_validation_data_next_to_a_drawn_validation_split_is_refused(blobs):
    x, y = blobs
    with pytest.raises(kplug.ConfigError, match=r"validation_data: data.split.validation = 0.2 also draws"):
        kplug.fit(blob_config(x, y), validation_data=(x, y))
