"""Model assembly: augmentations in front of the backbone, heads on top, precision policies."""

from __future__ import annotations

import keras
import numpy as np
from conftest import blob_config

import kplug


def test_augmentation_changes_inputs_only_while_training(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.5}}]
    model = kplug.fit(config, plugins=plugins).model
    augment = model.get_layer("augment")
    sample = keras.ops.convert_to_tensor(x[:8])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augment(sample, training=False)), x[:8])
    assert not np.allclose(keras.ops.convert_to_numpy(augment(sample, training=True)), x[:8])
    np.testing.assert_array_equal(model.predict(x[:8], verbose=0), model.predict(x[:8], verbose=0))


def test_multi_label_head_end_to_end(plugins, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype("float32")
    tags = np.stack([x[:, 0] > 0, x[:, 1] > 0, x[:, 2] > 0], axis=1).astype("float32")
    np.savez(tmp_path / "tags.npz", x=x, tags=tags)
    config = {
        "data": {
            "source": "npz",
            "options": {"path": "tags.npz", "targets": ["tags"]},
            "split": {"test": 0.2},
        },
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [{"name": "multi-label", "target": "tags"}],
        },
        "train": {"epochs": 20, "optimizer": {"learning_rate": 0.02}, "verbose": 0},
        "output": {"dir": "runs/tags"},
    }
    result = kplug.fit(config, plugins=plugins)
    assert result.metrics["binary_accuracy"] > 0.85
    record = kplug.predict(result.run_dir, data=str(tmp_path / "tags.npz"), plugins=plugins)[0]
    assert record["label"] == [str(i) for i in np.flatnonzero(tags[0])]
    assert len(record["probabilities"]) == 3


def test_label_smoothing_trains_and_the_model_file_loads_in_plain_keras(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {
        "epochs": 10,
        "label_smoothing": 0.2,
        "optimizer": {"learning_rate": 0.02},
        "verbose": 0,
    }
    result = kplug.fit(config, plugins=plugins)
    assert result.metrics["accuracy"] > 0.9
    reloaded = keras.saving.load_model(result.run_dir / "model.keras")  # compiled, with kplug's loss
    assert reloaded.loss.label_smoothing == 0.2


def test_precision_policy_is_applied_then_restored(blobs):
    x, y = blobs

    class BFloat16:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_precision_policies(register):
            register("bf16", lambda: "mixed_bfloat16")

    config = blob_config(x, y)
    config["precision"] = {"policy": "bf16"}
    result = kplug.fit(config, plugins=kplug.load_plugins([BFloat16()], entry_points=False))
    dense = result.model.get_layer("backbone").get_layer("dense1")
    assert dense.compute_dtype == "bfloat16" and dense.variable_dtype == "float32"
    assert result.model.get_layer("classification").get_layer("logits").compute_dtype == "float32"
    assert result.report["precision"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def two_head_run(x, y, size, weight: float) -> tuple[kplug.FitResult, np.ndarray]:
    """Classification of the blobs plus a regression of ``size`` whose loss is weighted by ``weight``.

    Returns the result and the regression head's kernel before training.
    """
    start = []

    class Start:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_start(run, model):
            start.append(keras.ops.convert_to_numpy(model.get_layer("size").weights[0]))

    config = {
        "name": "two-heads",
        "seed": 1,
        "data": {"source": "arrays", "options": {"x": x, "targets": {"label": y, "size": size}}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [
                {"name": "classification", "id": "kind"},
                {"name": "regression", "id": "size", "target": "size", "loss_weight": weight},
            ],
        },
        # plain SGD: a head's gradient, and so its step, scales with its loss weight. 240 rows in
        # batches of 48: no short last batch, whose per-head loss Keras on tensorflow averages as a full one
        "train": {
            "epochs": 8,
            "batch_size": 48,
            "verbose": 0,
            "optimizer": {"name": "sgd", "learning_rate": 0.02},
        },
        "output": {"dir": f"runs/weight-{weight}"},
    }
    result = kplug.fit(config, plugins=kplug.load_plugins([Start], entry_points=False))
    return result, start[0]


def test_loss_weight_scales_a_heads_share_of_the_training_loss(blobs):
    x, y = blobs
    size = (x[:, 0] - x[:, 1]).astype("float32")
    moved = {}
    for weight in (1.0, 1e-3):
        result, start = two_head_run(x, y, size, weight)
        history = {key: np.array(values) for key, values in result.history.items()}
        # the loss trained on is the weighted sum of the heads' (unweighted) losses
        np.testing.assert_allclose(
            history["loss"], history["kind_loss"] + weight * history["size_loss"], rtol=1e-5
        )
        assert history["kind_loss"][-1] < 0.6 * history["kind_loss"][0]  # the classifier learns either way
        end = keras.ops.convert_to_numpy(result.model.get_layer("size").weights[0])
        moved[weight] = np.abs(end - start).sum()
        if weight == 1.0:  # weighted 1 the regression learns
            assert history["size_loss"][-1] < 0.3 * history["size_loss"][0]
    # weighted 1e-3, the regression head's own layer hardly moves (its steps are 1000x smaller; its
    # inputs, the shared features, differ between the runs)
    assert moved[1e-3] < 0.05 * moved[1.0], moved
