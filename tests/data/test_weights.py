"""Class weights and per-example sample weights scale each training example's loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.data.weights import balanced_weights


def trained_weights(x, y, run, optimizer, train=None, data=None, targets=None):
    """Final weights of two SGD epochs on the blobs (no validation split: every row trains)."""
    config = blob_config(x, y)
    config["data"] = {
        "source": "arrays",
        "options": {"x": x, "y": y, "targets": targets or {}},
        **(data or {}),
    }
    config["train"] = {"epochs": 2, "batch_size": 32, "verbose": 0, "optimizer": optimizer, **(train or {})}
    config["output"] = {"dir": f"runs/{run}", "checkpoint_every": 0}
    result = kplug.fit(config)
    return [keras.ops.convert_to_numpy(w) for w in result.model.weights]


def assert_same(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def assert_differ(ours, theirs):
    assert any(not np.allclose(a, b, atol=1e-4) for a, b in zip(ours, theirs, strict=True))


SGD = {"name": "sgd", "learning_rate": 0.02}
HALF_RATE_SGD = {"name": "sgd", "learning_rate": 0.01}


def test_a_weight_column_of_twos_trains_like_twice_the_rate(blobs):
    """Keras averages weighted losses over the batch size, so weights of 2 double every SGD step."""
    x, y = blobs
    doubled = trained_weights(
        x, y, "twos", HALF_RATE_SGD, data={"sample_weight": "w"}, targets={"w": np.full(len(y), 2.0)}
    )
    assert_same(doubled, trained_weights(x, y, "plain", SGD))
    assert_differ(doubled, trained_weights(x, y, "unweighted", HALF_RATE_SGD))


def test_class_weights_equal_the_same_weights_given_per_example(blobs):
    x, y = blobs
    by_class = trained_weights(x, y, "by-class", SGD, train={"class_weight": {0: 0.0, 2: 3.0}})
    per_example = np.select([y == 0, y == 2], [0.0, 3.0], 1.0)
    by_column = trained_weights(
        x, y, "by-column", SGD, data={"sample_weight": "w"}, targets={"w": per_example}
    )
    assert_same(by_class, by_column)
    assert_differ(by_class, trained_weights(x, y, "unweighted", SGD))


def test_class_weights_name_labels_as_written_in_the_data(blobs):
    x, y = blobs
    names = np.array(["cat", "dog", "eel"])[y]
    by_name = trained_weights(x, names, "names", SGD, train={"class_weight": {"dog": 4.0}})
    by_id = trained_weights(x, y, "ids", SGD, train={"class_weight": {1: 4.0}})
    assert_same(by_name, by_id)


def test_balanced_class_weights():
    np.testing.assert_allclose(balanced_weights(np.array([0, 0, 0, 1]), 3), [4 / 9, 4 / 3, 1.0])


def test_a_csv_column_read_as_a_target_weights_examples(tmp_path, blobs):
    x, y = blobs
    weights = np.where(y == 1, 0.5, 1.0)
    lines = ["a,b,c,d,e,f,g,h,label,w"] + [
        ",".join([*map(str, row), str(label), str(w)]) for row, label, w in zip(x, y, weights, strict=True)
    ]
    (tmp_path / "blobs.csv").write_text("\n".join(lines) + "\n")
    config = blob_config(x, y)
    config["data"] = {
        "source": "csv",
        "options": {"path": str(tmp_path / "blobs.csv"), "targets": ["w"]},
        "sample_weight": "w",
    }
    config["train"] = {"epochs": 2, "batch_size": 32, "verbose": 0, "optimizer": SGD}
    config["output"] = {"dir": "runs/csv", "checkpoint_every": 0}
    from_csv = [keras.ops.convert_to_numpy(w) for w in kplug.fit(config).model.weights]
    # csv features are the same float32 values, so the run equals the arrays run with the same weights
    assert_same(
        from_csv, trained_weights(x, y, "arrays", SGD, data={"sample_weight": "w"}, targets={"w": weights})
    )


@pytest.mark.parametrize(
    ("train", "data", "message"),
    [
        ({"class_weight": {7: 2.0}}, {}, "train.class_weight: 7 is not a class of head"),
        ({}, {"sample_weight": "weight"}, "data.sample_weight = 'weight': the data has no such column"),
        ({}, {"sample_weight": "bad"}, "weights must be one finite, non-negative number per example"),
    ],
)
def test_bad_weights_are_named(blobs, train, data, message):
    x, y = blobs
    with pytest.raises(kplug.ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        trained_weights(x, y, "bad", SGD, train=train, data=data, targets={"bad": -np.ones(len(y))})


def test_class_weights_need_one_classification_head(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["data"]["options"] = {"x": x, "targets": {"a": y, "b": y}}
    config["model"]["heads"] = [
        {"name": "classification", "id": "first", "target": "a"},
        {"name": "classification", "id": "second", "target": "b"},
    ]
    config["train"]["class_weight"] = "balanced"
    with pytest.raises(kplug.ConfigError, match=r"has 2 \(first, second\)"):
        kplug.fit(config)
