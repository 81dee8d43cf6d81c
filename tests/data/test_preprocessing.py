"""A run's preprocessor: applied to every split, handed to the backbone, rebuilt by predict/evaluate."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

import kplug

BUILT: list[Any] = []


def offset(shift: float = 0.0):
    """Adds ``shift`` to every feature."""

    def preprocess(features):
        return np.asarray(features, "float32") + shift

    preprocess.shift = shift
    return preprocess


def recording_mlp(preprocessor: Any = None, units: int = 8) -> keras.Model:
    """A Dense backbone that records the preprocessor kplug hands it."""
    BUILT.append(preprocessor)
    return keras.Sequential([keras.layers.Dense(units, activation="relu", name="hidden")], name="mlp")


class Components:
    @staticmethod
    @kplug.hookimpl
    def kplug_register_preprocessors(register):
        register("offset", offset)

    @staticmethod
    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("recording-mlp", recording_mlp, preprocessor="offset")


def test_the_preprocessor_feeds_training_the_backbone_and_prediction(blobs, tmp_path):
    plugins = kplug.load_plugins([Components()], entry_points=False)
    x, y = blobs
    model = {
        "backbone": {"name": "recording-mlp", "options": {"shift": 100.0}},  # an old-style option: moved
        "heads": [{"name": "classification"}],
    }
    config = {
        "seed": 1,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"test": 0.25}},
        "model": model,
        "train": {"epochs": 1, "batch_size": 32, "verbose": 0},
        "output": {"dir": str(tmp_path / "run")},
    }
    BUILT.clear()
    result = kplug.fit(config, plugins=plugins)
    assert [getattr(p, "shift", None) for p in BUILT] == [100.0]
    test_x = x[:5]
    direct = keras.ops.convert_to_numpy(result.model(test_x + 100.0))
    records = kplug.predict(result.run_dir, data={"x": test_x}, plugins=plugins)
    np.testing.assert_allclose([r["logits"] for r in records], direct, rtol=1e-5, atol=1e-5)
    unshifted = keras.ops.convert_to_numpy(result.model(test_x))
    assert not np.allclose(direct, unshifted, atol=1e-3)
