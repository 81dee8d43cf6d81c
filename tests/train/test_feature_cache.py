"""Head-only stages on a frozen backbone train on cached features, with the results of an uncached run."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from conftest import InterruptOnce, InterruptPlugin, blob_config, mnist_data

import kplug
from kplug.errors import ConfigError


def staged(config, cache, run_dir, backbone_dropout=0.0):
    """Stage 1 trains the heads (with dropout), stage 2 everything (SGD, cosine); checkpoints every 5 batches."""
    config = json.loads(json.dumps(config, default=lambda a: a.tolist()))  # a private copy
    config["model"]["heads"] = [{"name": "classification", "options": {"dropout": 0.2}}]
    config["model"]["backbone"]["options"]["dropout"] = backbone_dropout
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,
        "cache_features": cache,
        # the stage's optimizer and schedule must reach the heads' stand-in
        "optimizer": {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        "schedule": {"name": "cosine"},
        "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 1, "learning_rate": 3e-3}],
    }
    config["output"] = {"dir": str(run_dir), "checkpoint_every_steps": 5}
    return config


def blobs_config(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["data"]["options"] = {"x": x, "y": y}
    return config


def cnn_config():
    return {
        "seed": 3,
        "data": {**mnist_data(limit=240), "split": {"validation": 0.2}},
        "model": {"backbone": {"name": "small-cnn", "options": {"filters": [4, 8], "dense_units": 16}}},
    }


def assert_same_weights(ours, theirs, atol=1e-5):
    for a, b in zip(ours.weights, theirs.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=0, atol=atol, err_msg=a.path
        )


def feature_cache(result, stage):
    return result.report["stages"][stage]["feature_cache"]


# the mlp case in the quick set; the small CNN (image features, MNIST) in the slow set
@pytest.mark.parametrize("backbone", ["mlp", pytest.param("small-cnn", marks=pytest.mark.slow)])
def test_cached_head_stage_equals_the_uncached_run(blobs, plugins, backbone):
    base = blobs_config(blobs) if backbone == "mlp" else {**cnn_config(), "name": "cnn"}
    base["model"]["heads"] = []
    cached = kplug.fit(staged(base, True, "runs/cached"), plugins=plugins)
    plain = kplug.fit(staged(base, False, "runs/plain"), plugins=plugins)

    assert feature_cache(cached, 0)["used"] is True
    assert feature_cache(plain, 0) == {"used": False, "reason": "train.cache_features is false"}
    assert feature_cache(cached, 1)["used"] is False
    assert "backbone layers train" in feature_cache(cached, 1)["reason"]
    assert_same_weights(cached.model, plain.model)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(cached.history[name], plain.history[name], rtol=1e-5, atol=1e-6)
    # the report on disk says it too
    saved = json.loads((cached.run_dir / "report.json").read_text())
    assert saved["stages"][0]["feature_cache"]["used"] is True


def test_auto_caches_a_frozen_backbone_without_dropout(blobs, plugins):
    result = kplug.fit(staged(blobs_config(blobs), "auto", "runs/auto"), plugins=plugins)
    assert feature_cache(result, 0) == {"used": True}
    assert result.report["timings"]["feature_seconds"] > 0


def test_auto_declines_a_backbone_with_dropout(blobs, plugins):
    config = staged(blobs_config(blobs), "auto", "runs/dropout", backbone_dropout=0.3)
    result = kplug.fit(config, plugins=plugins)
    reason = feature_cache(result, 0)["reason"]
    assert feature_cache(result, 0)["used"] is False
    assert "random numbers" in reason and "backbone/dropout1" in reason


def test_auto_declines_augmentation(blobs, plugins):
    config = staged(blobs_config(blobs), "auto", "runs/augment")
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.05}}]
    result = kplug.fit(config, plugins=plugins)
    assert feature_cache(result, 0) == {
        "used": False,
        "reason": "augment (gaussian-noise) changes the inputs at every step",
    }


def test_auto_declines_an_unfrozen_backbone_layer(blobs, plugins):
    config = staged(blobs_config(blobs), "auto", "runs/unfrozen")
    config["model"]["backbone"]["options"]["units"] = [16, 8]
    config["train"]["stages"][0]["trainable"] = ["heads/*", "backbone/dense2"]
    result = kplug.fit(config, plugins=plugins)
    assert feature_cache(result, 0)["used"] is False
    assert "backbone/dense2" in feature_cache(result, 0)["reason"]


def test_true_refuses_a_stage_that_cannot_cache_before_writing(blobs, plugins, tmp_path):
    config = staged(blobs_config(blobs), True, "runs/refused")
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.05}}]
    with pytest.raises(ConfigError, match=r"train.cache_features = true, but train.stages\[0\] .*augment"):
        kplug.fit(config, plugins=plugins)
    assert not (tmp_path / "runs" / "refused").exists()


@pytest.mark.parametrize("interrupt", [{"epoch": 0, "batch": 7}, {"epoch": 1, "batch": 2}], ids=str)
def test_interrupted_cached_stage_resumes_to_the_same_weights(blobs, interrupt):
    plugins = kplug.load_plugins([InterruptPlugin()], entry_points=False)
    plain = kplug.fit(staged(blobs_config(blobs), False, "runs/plain"), plugins=plugins)

    InterruptOnce.fired = False
    config = staged(blobs_config(blobs), True, "runs/cut")
    config["callbacks"] = [{"name": "interrupt-once", "options": interrupt}]
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(config, plugins=plugins)
    resumed = kplug.fit(config, resume="runs/cut", plugins=plugins)

    assert feature_cache(resumed, 0)["used"] is True
    assert_same_weights(resumed.model, plain.model)
    np.testing.assert_allclose(resumed.history["loss"], plain.history["loss"], rtol=1e-5)


def test_best_model_of_a_cached_stage_is_the_whole_model(blobs, plugins):
    config = staged(blobs_config(blobs), True, "runs/best")
    config["output"]["save_best"] = "val_loss"
    result = kplug.fit(config, plugins=plugins)
    best = keras.saving.load_model(result.run_dir / "best.keras")
    assert [layer.name for layer in best.layers] == [layer.name for layer in result.model.layers]
    assert [w.shape for w in best.weights] == [w.shape for w in result.model.weights]
    x, y = blobs
    metrics = kplug.evaluate(result.run_dir, data={"x": x, "y": y})
    assert np.isfinite(metrics["loss"])


def test_auto_declines_features_over_its_memory_limit(blobs, plugins, monkeypatch):
    monkeypatch.setattr("kplug.train.feature_cache.AUTO_LIMIT_BYTES", 1024)  # 240 rows x 16 floats exceed it
    result = kplug.fit(staged(blobs_config(blobs), "auto", "runs/big"), plugins=plugins)
    assert feature_cache(result, 0)["used"] is False
    assert "GiB (auto caches up to" in feature_cache(result, 0)["reason"]
