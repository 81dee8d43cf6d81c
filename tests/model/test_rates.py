"""Discriminative learning rates: per-pattern rates and layer-wise decay inside the compiled step."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.model.paths import variable_paths


def deltas(x, y, **train):
    """Weight change after one SGD step on one batch, by variable path."""
    config = blob_config(x[:32], y[:32])
    config["data"]["split"] = {"validation": 0.0}
    config["model"]["backbone"]["options"] = {"units": [16, 8]}
    config["train"] = {
        "epochs": 1,
        "batch_size": 32,
        "verbose": 0,
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        **train,
    }
    config["output"] = {"dir": f"runs/{len(train)}-{sorted(train)}", "overwrite": True}
    before = {}

    class Snapshot:
        @kplug.hookimpl
        def kplug_on_fit_start(self, run, model):
            before.update({p: keras.ops.convert_to_numpy(v).copy() for p, v in variable_paths(model).items()})

    result = kplug.fit(config, plugins=kplug.load_plugins([Snapshot()], entry_points=False))
    after = {p: keras.ops.convert_to_numpy(v) for p, v in variable_paths(result.model).items()}
    return {p: after[p] - before[p] for p in before}, result.report


@pytest.mark.parametrize("weight_decay", [None, 0.5], ids=["no-decay", "weight-decay"])
def test_rates_per_layer_group_scale_each_update(blobs, weight_decay):
    """SGD's step, decoupled weight decay included, is linear in the rate: each group's change
    is the plain change times its multiplier."""
    x, y = blobs
    optimizer = {"name": "sgd", "learning_rate": 0.1, "weight_decay": weight_decay}
    plain, _ = deltas(x, y, optimizer=optimizer)
    grouped, report = deltas(
        x, y, optimizer=optimizer, learning_rates={"backbone/dense1": 0.05, "backbone/*": 0.01}
    )
    assert report["stages"][0]["learning_rates"] == {
        "backbone/dense1": 0.05,
        "backbone/dense2": 0.01,
        "heads/classification": 0.1,
    }
    for path, change in plain.items():
        scale = 0.5 if "dense1" in path else 0.1 if path.startswith("backbone/") else 1.0
        np.testing.assert_allclose(grouped[path], change * scale, rtol=1e-4, atol=1e-7)


def test_layer_decay_gives_lower_blocks_smaller_rates(blobs):
    x, y = blobs
    plain, _ = deltas(x, y)
    decayed, report = deltas(x, y, layer_decay=0.5)
    assert report["stages"][0]["learning_rates"] == {
        "backbone/dense1": 0.025,
        "backbone/dense2": 0.05,
        "heads/classification": 0.1,
    }
    for path, change in plain.items():
        scale = (
            {"dense1": 0.25, "dense2": 0.5}.get(path.split("/")[1], 1.0)
            if path.startswith("backbone/")
            else 1.0
        )
        np.testing.assert_allclose(decayed[path], change * scale, rtol=1e-4, atol=1e-7)


def test_a_rate_pattern_that_matches_nothing_is_an_error(blobs):
    x, y = blobs
    with pytest.raises(kplug.ConfigError, match=r"'backbone/conv\*' match no layer.*backbone/dense1"):
        deltas(x, y, learning_rates={"backbone/conv*": 0.01})
