"""Determinism: with a seed set, two runs on the same backend give identical metrics and weights
(shuffled batches, dropout, noise augmentation, two stages); another seed gives other weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.train.metrics_file import read_metrics


def seeded_config(x, y, run_dir, seed):
    config = blob_config(x, y)
    config["seed"] = seed
    config["model"]["backbone"]["options"] = {"units": [16], "dropout": 0.3}
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.05}}]
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,
        "stages": [{"epochs": 1, "trainable": ["heads/*"]}, {"epochs": 2, "learning_rate": 3e-4}],
    }
    config["output"] = {"dir": run_dir}
    return config


def weights(result):
    return [keras.ops.convert_to_numpy(w) for w in result.model.weights]


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_two_seeded_runs_are_identical(blobs, plugins):
    x, y = blobs
    first = kplug.fit(seeded_config(x, y, "runs/first", 7), plugins=plugins)
    second = kplug.fit(seeded_config(x, y, "runs/second", 7), plugins=plugins)
    assert read_metrics(first.run_dir / "metrics.csv") == read_metrics(second.run_dir / "metrics.csv")
    assert first.metrics == second.metrics
    for ours, theirs in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(ours, theirs)

    other = kplug.fit(seeded_config(x, y, "runs/other", 8), plugins=plugins)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(first), weights(other), strict=True))
