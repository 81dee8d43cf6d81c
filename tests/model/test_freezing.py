"""Stage trainable sets: glob and regex patterns, frozen patterns, the last N blocks, BatchNorm policy."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.config.schema import StageConfig
from kplug.model.freezing import apply_stage_trainable, backbone_blocks
from kplug.model.paths import variable_paths


def images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 8, 8, 1)).astype("float32") + y[:, None, None, None]
    return x, y


def cnn_config(x, y, stages, **backbone):
    config = blob_config(x, y)
    config["model"]["backbone"] = {
        "name": "small-cnn",
        "options": {"filters": [4, 8], "dense_units": 8, **backbone},
    }
    config["train"] = {"batch_size": 16, "verbose": 0, "stages": stages}
    return config


def values(model):
    return {path: keras.ops.convert_to_numpy(v).copy() for path, v in variable_paths(model).items()}


def build(x, y, **backbone):
    trainer = kplug.Trainer(
        cnn_config(x, y, [{"epochs": 1}], **backbone), plugins=kplug.load_plugins(entry_points=False)
    )
    from kplug.data.inputs import prepare_data
    from kplug.model.assembly import build_model

    trainer.data = prepare_data(trainer.run)
    model, _ = build_model(trainer.run, trainer.data.spec, trainer.data.label_maps)
    return model


def test_frozen_weights_stay_bit_identical_and_trained_ones_change():
    x, y = images()
    trainer = kplug.Trainer(
        cnn_config(x, y, [{"epochs": 2, "trainable": ["re:backbone/(conv2|embedding)", "heads/*"]}]),
        plugins=kplug.load_plugins(entry_points=False),
    )
    before = {}

    class Snapshot:
        @kplug.hookimpl
        def kplug_on_fit_start(self, run, model):
            before.update(values(model))

    trainer.plugins = kplug.load_plugins([Snapshot()], entry_points=False)
    result = trainer.fit()
    after = values(result.model)
    for path in before:
        if path.startswith("backbone/conv1/"):
            np.testing.assert_array_equal(before[path], after[path])
        else:
            assert not np.array_equal(before[path], after[path]), path
    assert result.report["stages"][0]["trainable"] == [
        "backbone/conv2",
        "backbone/embedding",
        "heads/classification",
    ]


def test_train_last_blocks_and_frozen_patterns():
    x, y = images()
    model = build(x, y)
    assert backbone_blocks(model) == ["backbone/conv1", "backbone/conv2", "backbone/embedding"]
    trained = apply_stage_trainable(model, StageConfig(epochs=1, train_last_blocks=1))
    assert trained == ["backbone/embedding", "heads/classification"]
    assert apply_stage_trainable(model, StageConfig(epochs=1, train_last_blocks=0)) == [
        "heads/classification"
    ]
    trained = apply_stage_trainable(model, StageConfig(epochs=1, frozen=["backbone/conv*"]))
    assert trained == ["backbone/embedding", "heads/classification"]
    assert {v.path.split("/")[-2] for v in model.trainable_variables} == {"embedding", "logits"}


def test_patterns_that_match_nothing_or_freeze_everything_are_errors():
    x, y = images()
    model = build(x, y)
    with pytest.raises(kplug.ConfigError, match=r"'backbone/conv9' matches no layer.*backbone/conv1"):
        apply_stage_trainable(model, StageConfig(epochs=1, trainable=["backbone/conv9"]))
    with pytest.raises(kplug.ConfigError, match="not a valid regex"):
        apply_stage_trainable(model, StageConfig(epochs=1, trainable=["re:backbone/(conv"]))
    with pytest.raises(kplug.ConfigError, match="trains no variable"):
        apply_stage_trainable(model, StageConfig(epochs=1, trainable=["heads/*"], frozen=["heads/*"]))
    with pytest.raises(kplug.ConfigError, match="has 3 blocks"):
        apply_stage_trainable(model, StageConfig(epochs=1, train_last_blocks=4))


@pytest.mark.parametrize("policy", ["inference", "train"])
def test_frozen_batchnorm_policy(policy):
    x, y = images()
    config = cnn_config(x, y, [{"epochs": 1, "trainable": ["heads/*"], "batchnorm": policy}], batch_norm=True)
    before = {}

    class Snapshot:
        @kplug.hookimpl
        def kplug_on_fit_start(self, run, model):
            before.update(values(model))

    result = kplug.fit(config, plugins=kplug.load_plugins([Snapshot()], entry_points=False))
    after = values(result.model)
    for name in ("gamma", "beta"):
        np.testing.assert_array_equal(before[f"backbone/bn1/{name}"], after[f"backbone/bn1/{name}"])
    moved = not np.array_equal(before["backbone/bn1/moving_mean"], after["backbone/bn1/moving_mean"])
    assert moved == (policy == "train")
