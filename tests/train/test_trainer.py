"""The Trainer: parity with plain Keras, real training on the MNIST slice, run directory, hooks."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.data.batches import epoch_order


def plain_keras_run(x, y, seed, epochs, batch_size):
    """The same model, data, seed and batch order trained with plain Keras Model.fit."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    losses = []
    for epoch in range(epochs):  # kplug's documented order: a seeded permutation per epoch
        order = epoch_order(seed, epoch, len(x))
        history = model.fit(x[order], y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        losses += history.history["loss"]
    return model, {"loss": losses}


def test_parity_with_plain_keras_fit(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y, data={"source": "arrays", "options": {"x": x, "y": y}})
    config["train"] = {"epochs": 3, "batch_size": 32, "verbose": 0}
    result = kplug.fit(config, plugins=plugins)
    plain_model, plain_history = plain_keras_run(x, y, seed=1, epochs=3, batch_size=32)
    np.testing.assert_allclose(result.history["loss"], plain_history["loss"], atol=1e-5, rtol=0)
    for ours, theirs in zip(result.model.weights, plain_model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


@pytest.mark.slow
def test_digits_training_reaches_high_accuracy(mnist_options, plugins):
    config = {
        "name": "digits",
        "seed": 3,
        "data": {
            "source": "idx",
            "options": mnist_options,
            "limit": 1200,
            "split": {"validation": 0.1, "test": 0.2},
        },
        "model": {"backbone": {"name": "small-cnn"}, "heads": [{"name": "classification"}]},
        "train": {"epochs": 4, "batch_size": 32, "optimizer": {"learning_rate": 3e-3}, "verbose": 0},
    }
    result = kplug.fit(config, plugins=plugins)
    assert result.metrics["split"] == "test"
    assert result.metrics["accuracy"] > 0.85  # chance is 0.10
    assert result.history["val_accuracy"][-1] > result.history["val_accuracy"][0]


def test_run_directory_holds_everything(blobs, plugins):
    x, y = blobs
    result = kplug.fit(blob_config(x, y), plugins=plugins)
    run_dir = result.run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "curves.png",
        "labels.json",
        "metrics.csv",
        "model.keras",
        "report.json",
    ]
    report = json.loads((run_dir / "report.json").read_text())
    assert report["backend"] == keras.backend.backend()
    assert report["versions"]["kplug"] and report["versions"]["keras"] == keras.__version__
    assert report["seed"] == 1 and report["precision"] == "float32"
    assert report["distribution"]["devices"]
    assert report["data"] == {"train": 192, "validation": 48, "test": 0, "labels": {"label": ["0", "1", "2"]}}
    assert report["metrics"]["split"] == "validation" and "accuracy" in report["metrics"]
    assert report["timings"]["train_seconds"] > 0
    assert 0 < report["timings"]["fit_seconds"] < report["timings"]["train_seconds"]  # Model.fit calls only
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["loss"]) == pytest.approx(result.history["loss"][-1], rel=1e-6)
    assert (run_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    reloaded = keras.saving.load_model(run_dir / "model.keras", compile=False)
    np.testing.assert_allclose(
        reloaded.predict(x[:5], verbose=0), result.model.predict(x[:5], verbose=0), atol=1e-6
    )


def test_existing_run_directory_is_not_overwritten(blobs, plugins):
    x, y = blobs
    kplug.fit(blob_config(x, y), plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="already holds a run") as refused:
        kplug.fit(blob_config(x, y), plugins=plugins)
    # the way out, for a Python user as for a CLI user
    for way in (
        "kplug.fit(config, output=DIR)",
        "kplug.fit(config, resume='runs/blobs')",
        "--resume runs/blobs",
    ):
        assert way in str(refused.value)
    config = blob_config(x, y)
    config["output"] = {"dir": "runs/blobs", "overwrite": True}
    assert kplug.fit(config, plugins=plugins).run_dir.is_dir()


def test_stages_freeze_and_transfer_to_a_new_head(blobs, plugins):
    x, y = blobs
    kplug.fit(blob_config(x, y), plugins=plugins)
    transfer = blob_config(x, (y == 2).astype("int64"))
    transfer["output"] = {"dir": "runs/transfer"}
    transfer["model"] = {
        "backbone": {"name": "mlp", "options": {"units": [16]}, "init": {"from": "runs/blobs"}},
        "heads": [{"name": "classification", "id": "is_two"}],
    }
    transfer["train"] = {"verbose": 0, "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 1}]}
    source = keras.saving.load_model("runs/blobs/model.keras", compile=False)
    before = keras.ops.convert_to_numpy(source.get_layer("backbone").weights[0])
    trainer = kplug.Trainer(transfer, plugins=plugins)
    frozen_after_stage_one = {}

    class Spy:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_epoch_end(run, epoch, logs):
            if epoch == 1:
                frozen_after_stage_one["kernel"] = keras.ops.convert_to_numpy(
                    run.model.get_layer("backbone").weights[0]
                )

    trainer.plugins.manager.register(Spy())
    result = trainer.fit()
    np.testing.assert_array_equal(frozen_after_stage_one["kernel"], before)  # frozen: bit-identical
    after = keras.ops.convert_to_numpy(result.model.get_layer("backbone").weights[0])
    assert not np.array_equal(after, before)  # stage two trained everything
    assert len(result.report["init"]["initialised"]) == 2
    assert result.report["init"]["left_new"] == ["heads/is_two/logits/kernel", "heads/is_two/logits/bias"]
    assert [s["trainable"] for s in result.report["stages"]] == [
        ["heads/is_two"],
        ["backbone", "heads/is_two"],
    ]


def test_lifecycle_hooks_run_at_boundaries(blobs):
    x, y = blobs
    calls = []

    class Recorder:
        @staticmethod
        @kplug.hookimpl
        def kplug_configure(config):
            calls.append("configure")
            return {"seed": 5}

        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_start(run, model):
            calls.append(("start", model.count_params() > 0))

        @staticmethod
        @kplug.hookimpl
        def kplug_on_stage_start(run, model, stage):
            calls.append(("stage", stage, getattr(model, "optimizer", None) is None))

        @staticmethod
        @kplug.hookimpl
        def kplug_on_epoch_end(run, epoch, logs):
            calls.append(("epoch", epoch, "loss" in logs))

        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            calls.append(("end", result.run_dir.name))

    result = kplug.fit(blob_config(x, y), plugins=kplug.load_plugins([Recorder()], entry_points=False))
    assert calls == [
        "configure",
        ("start", True),
        ("stage", 0, True),
        ("epoch", 0, True),
        ("epoch", 1, True),
        ("epoch", 2, True),
        ("end", "blobs"),
    ]
    assert result.report["seed"] == 5


def test_multi_head_multi_target_training(plugins):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype("float32")
    targets = {"label": (x[:, 0] > 0).astype("int64"), "size": x[:, 1] * 2.0}
    config = {
        "data": {"source": "arrays", "options": {"x": x, "targets": targets}, "split": {"test": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [32]}},
            "heads": [
                {"name": "classification", "id": "sign"},
                {"name": "regression", "id": "size", "target": "size"},
            ],
        },
        "train": {"epochs": 15, "optimizer": {"learning_rate": 1e-2}, "verbose": 0},
    }
    result = kplug.fit(config, plugins=plugins)
    assert result.metrics["sign_accuracy"] > 0.85
    assert result.metrics["size_mae"] < 0.6


def test_unknown_component_fails_before_anything_is_written(blobs, plugins, tmp_path):
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["backbone"]["name"] = "resnet5"
    with pytest.raises(
        kplug.ConfigError,
        match=r"model.backbone.name: Unknown backbone 'resnet5'.*Registered backbones: keras-file, keras-model, mlp, small-cnn",
    ):
        kplug.Trainer(config, plugins=plugins)
    assert list(tmp_path.iterdir()) == []


def test_head_num_classes_must_fit_the_data(blobs, plugins, tmp_path):
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["heads"] = [{"name": "classification", "options": {"num_classes": 2}}]
    with pytest.raises(kplug.DataError, match=r"Label 2 of target 'label' is out of range"):
        kplug.fit(config, plugins=plugins)
    assert list(tmp_path.iterdir()) == []


def test_callbacks_from_config_are_used(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {"epochs": 30, "optimizer": {"learning_rate": 0.05}, "verbose": 0}
    config["callbacks"] = [{"name": "early-stopping", "options": {"monitor": "val_accuracy", "patience": 1}}]
    result = kplug.fit(config, plugins=plugins)
    assert len(result.history["loss"]) < 30  # stopped early
    assert result.report["stages"][0]["epochs"] == len(result.history["loss"])


def test_configure_plugins_build_on_each_other(blobs):
    x, y = blobs

    def adds(name):
        class Adds:
            @staticmethod
            @kplug.hookimpl
            def kplug_configure(config):
                return {"callbacks": [*config.model_dump()["callbacks"], {"name": name}]}

        return Adds()

    plugins = kplug.load_plugins([adds("terminate-on-nan"), adds("early-stopping")], entry_points=False)
    trainer = kplug.Trainer(blob_config(x, y), plugins=plugins)
    assert [c.name for c in trainer.config.callbacks] == ["terminate-on-nan", "early-stopping"]


class StageLog(keras.callbacks.Callback):
    """Per ``fit`` call (stage): the batches trained, then the optimizer, its rate and its update count."""

    stages: list[dict] = []

    def on_train_begin(self, logs=None):
        StageLog.stages.append({"batches": 0})

    def on_train_batch_end(self, batch, logs=None):
        StageLog.stages[-1]["batches"] += 1

    def on_train_end(self, logs=None):
        optimizer = self.model.optimizer
        StageLog.stages[-1].update(
            optimizer=type(optimizer).__name__,
            learning_rate=float(keras.ops.convert_to_numpy(optimizer.learning_rate)),
            updates=int(keras.ops.convert_to_numpy(optimizer.iterations)),
        )


class StageLogPlugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("stage-log", StageLog)


def test_stages_carry_optimizer_state_and_grow_the_batch(blobs):
    x, y = blobs
    config = blob_config(x[:230], y[:230])  # 184 training rows: every batch size leaves a short batch
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,
        "stages": [
            {"epochs": 1, "trainable": ["heads/*"]},
            {"epochs": 1, "trainable": ["heads/*"], "batch_size": 32},  # same variables: state carries
            {"epochs": 1, "batch_size": 64, "learning_rate": 1e-4},  # unfreezing: fresh state
            {"epochs": 1, "batch_size": 64, "optimizer": {"name": "sgd", "momentum": 0.9}},
        ],
    }
    config["callbacks"] = [{"name": "stage-log"}]
    StageLog.stages = []
    result = kplug.fit(config, plugins=kplug.load_plugins([StageLogPlugin()], entry_points=False))
    report, trained = result.report["stages"], StageLog.stages
    batches = [math.ceil(result.report["data"]["train"] / size) for size in (16, 32, 64, 64)]
    assert batches == [12, 6, 3, 3]
    assert [s["batches"] for s in trained] == batches
    # the carried stage continues the first stage's update count; the others start from zero
    assert [s["updates"] for s in trained] == [12, 12 + 6, 3, 3]
    assert [s["optimizer_state"] for s in report] == ["fresh", "carried for 2 variables", "fresh", "fresh"]
    assert [s["optimizer"] for s in trained] == ["Adam", "Adam", "Adam", "SGD"]
    assert [s["learning_rate"] for s in trained] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-3])
    assert report[0]["trainable"] == ["heads/classification"]


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_gives_the_smoothed_cross_entropy(blobs, plugins, smoothing):
    """The reported loss is the cross-entropy against (1 - s) * one-hot + s / classes, by hand."""
    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {"epochs": 1, "batch_size": 32, "verbose": 0, "label_smoothing": smoothing}
    trainer = kplug.Trainer(config, plugins=plugins)
    result = trainer.fit()
    inputs, labels = trainer.split_data("validation")
    logits = keras.ops.convert_to_numpy(result.model.predict(inputs, verbose=0)).astype("float64")
    log_probabilities = logits - logits.max(axis=1, keepdims=True)
    log_probabilities -= np.log(np.exp(log_probabilities).sum(axis=1, keepdims=True))
    targets = (1 - smoothing) * np.eye(3)[np.asarray(labels).reshape(-1)] + smoothing / 3
    expected = -(targets * log_probabilities).sum(axis=1).mean()
    assert result.metrics["split"] == "validation"
    assert result.metrics["loss"] == pytest.approx(expected, rel=1e-5)


def test_stage_optimizer_conflicts_are_config_errors(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {"stages": [{"epochs": 1, "optimizer": {"momentum": 0.9}}]}
    with pytest.raises(kplug.ConfigError, match=r"stages\[0\].optimizer: .*momentum applies to sgd"):
        kplug.fit(config, plugins=plugins)
    config["train"] = {"stages": [{"epochs": 0}]}
    with pytest.raises(kplug.ConfigError, match=r"train.stages\[0\].epochs = 0"):
        kplug.fit(config, plugins=plugins)


def test_incremental_training_keeps_the_old_head_unchanged(blobs, plugins):
    """Freeze a trained model, add a head for a new task, train only it: old predictions do not move."""
    x, y = blobs
    first = kplug.fit(blob_config(x, y), plugins=plugins)
    parity = (x[:, 0] > 0).astype("int64")
    config = blob_config(x, y)
    config["data"]["options"] = {"x": x, "targets": {"label": y, "parity": parity}}
    config["model"]["heads"] = [
        {"name": "classification", "id": "classification"},
        {"name": "classification", "id": "parity", "target": "parity"},
    ]
    config["model"]["backbone"]["init"] = {"from": str(first.run_dir)}
    config["train"] = {"verbose": 0, "stages": [{"epochs": 3, "trainable": ["heads/parity"]}]}
    config["output"] = {"dir": "runs/incremental"}
    second = kplug.fit(config, plugins=plugins)
    assert second.report["init"]["left_new"] == ["heads/parity/logits/kernel", "heads/parity/logits/bias"]
    old = first.model.predict(x, verbose=0)
    new = second.model.predict(x, verbose=0)
    np.testing.assert_allclose(new["classification"], old, atol=1e-6)
    assert set(second.history) >= {"parity_accuracy", "classification_accuracy"}


def test_stage_start_hook_decides_what_trains_in_the_stage(blobs):
    x, y = blobs
    before = {}

    class FreezeFirstDense:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_stage_start(run, model, stage):
            dense = model.get_layer("backbone").get_layer("dense1")
            dense.kernel.trainable = False  # after the stage's trainable set, before compile
            before["kernel"] = keras.ops.convert_to_numpy(dense.kernel).copy()

    result = kplug.fit(
        blob_config(x, y), plugins=kplug.load_plugins([FreezeFirstDense()], entry_points=False)
    )
    dense = result.model.get_layer("backbone").get_layer("dense1")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(dense.kernel), before["kernel"])
    assert not np.array_equal(keras.ops.convert_to_numpy(dense.bias), np.zeros(dense.bias.shape))


def test_save_best_keeps_the_epoch_with_the_best_monitored_metric(blobs):
    x, y = blobs
    config = blob_config(x, y, output={"dir": "runs/best", "save_best": "val_loss"})
    config["train"] = {"epochs": 4, "batch_size": 32, "verbose": 0, "optimizer": {"learning_rate": 0.5}}
    trainer = kplug.Trainer(config, plugins=kplug.load_plugins(entry_points=False))
    result = trainer.fit()
    history = result.history["val_loss"]
    best_epoch = min(range(len(history)), key=lambda i: (history[i], i)) + 1
    record = json.loads((result.run_dir / "best.json").read_text())
    assert record == {
        "monitor": "val_loss",
        "value": pytest.approx(history[best_epoch - 1]),
        "epoch": best_epoch,
        "stage": 1,
    }
    assert result.report["best"] == record
    best = keras.saving.load_model(result.run_dir / "best.keras")
    x_val, y_val = trainer.split_data("validation")
    assert best.evaluate(x_val, y_val, verbose=0, return_dict=True)["loss"] == pytest.approx(
        record["value"], rel=1e-4
    )


def test_save_best_names_the_metrics_the_run_logs(blobs):
    x, y = blobs
    config = blob_config(x, y, output={"dir": "runs/best", "save_best": "val_acc"})
    with pytest.raises(
        kplug.ConfigError, match=r"output.save_best = 'val_acc': this run logs .*val_accuracy"
    ):
        kplug.fit(config, plugins=kplug.load_plugins(entry_points=False))
    assert not Path("runs/best").exists()
