"""Magnitude pruning: target sparsity per layer, masks kept through fine-tuning, report and accuracy."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from compress_digits import digits_config
from kplug.testing import latest_checkpoint

import kplug_compress
from kplug_compress.pruning import (
    MagnitudePruning,
    PruningProgress,
    grow_mask,
    kernel_variable,
    polynomial_sparsity,
    prunable_layers,
)


class ZerosAtStageStart:
    """A throwaway plugin recording which kernel weights are zero when each stage starts."""

    def __init__(self) -> None:
        self.zeros: dict[int, dict[str, np.ndarray]] = {}

    @kplug.hookimpl
    def kplug_on_stage_start(self, run, model, stage):
        self.zeros[stage] = {
            path: keras.ops.convert_to_numpy(kernel_variable(layer)) == 0
            for path, layer in prunable_layers(model, ["backbone/*"])
        }


def prune_config(output: Path, source: Path, **options) -> dict:
    config = digits_config(
        output, callbacks=[{"name": "prune", "options": {"target_sparsity": 0.6, **options}}]
    )
    config["model"]["backbone"]["init"] = {"from": str(source), "map": {"backbone/(.*)": "backbone/\\1"}}
    config["train"].pop("epochs")
    config["train"]["stages"] = [{"epochs": 2}, {"epochs": 1, "learning_rate": 1e-3}]
    return config


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, digits_run) -> tuple[kplug.FitResult, ZerosAtStageStart]:
    recorder = ZerosAtStageStart()
    plugins = kplug.load_plugins([kplug_compress, recorder], entry_points=False)
    config = prune_config(tmp_path_factory.mktemp("prune") / "run", digits_run.run_dir, frequency=2)
    return kplug.fit(config, plugins=plugins), recorder


def test_every_layer_reaches_the_target_and_stays_pruned(pruned, digits_run) -> None:
    result, recorder = pruned
    assert set(recorder.zeros) == {0, 1}
    assert all(mask.mean() < 0.05 for mask in recorder.zeros[0].values())  # a dense model to start
    for path, layer in prunable_layers(result.model, ["backbone/*"]):
        values = keras.ops.convert_to_numpy(kernel_variable(layer))
        assert (values == 0).sum() == np.floor(0.6 * values.size), path
        # zero after the pruning stage -> still zero after fine-tuning (the masks were kept)
        assert np.all(values[recorder.zeros[1][path]] == 0), path
        assert recorder.zeros[1][path].sum() == np.floor(0.6 * values.size), path
    (_, head), *_ = prunable_layers(result.model, ["heads/*"])
    assert (keras.ops.convert_to_numpy(head.kernel) == 0).mean() < 0.05  # only the targets are pruned
    assert result.metrics["accuracy"] >= digits_run.metrics["accuracy"] - 0.1


def test_report_gives_per_layer_sparsity_and_accuracy(pruned) -> None:
    result, _ = pruned
    report = result.report["pruning"]
    assert set(report["layers"]) == {"backbone/conv1", "backbone/conv2", "backbone/embedding"}
    assert all(value == pytest.approx(0.6, abs=0.03) for value in report["layers"].values())
    assert report["metrics"]["accuracy"] == result.metrics["accuracy"]
    assert report["weights_bytes_zlib"] < report["weights_bytes"]
    saved = kplug.plugin.load_model_file(result.run_dir / "model.keras")
    assert (
        keras.ops.convert_to_numpy(saved.get_layer("backbone").get_layer("embedding").kernel) == 0
    ).mean() > 0.59


def test_schedule_and_masks() -> None:
    assert polynomial_sparsity(0.0, 0.0, 0.8) == 0.0
    assert polynomial_sparsity(1.0, 0.0, 0.8) == pytest.approx(0.8)
    assert 0.0 < polynomial_sparsity(0.5, 0.0, 0.8) < 0.8
    values = np.array([0.0, -3.0, 0.5, 2.0, -0.1, 1.0])
    mask = grow_mask(values, values != 0, 0.5)
    assert mask.tolist() == [False, True, False, True, False, True]
    assert grow_mask(values * 10, mask, 0.3).tolist() == mask.tolist()  # masks never shrink


def test_bad_options(tmp_path, plugins, digits_run) -> None:
    with pytest.raises(kplug.ConfigError, match=r"target_sparsity = 1.5"):
        kplug.fit(prune_config(tmp_path / "a", digits_run.run_dir, target_sparsity=1.5), plugins=plugins)
    with pytest.raises(kplug.ConfigError, match=r"targets = \['heads/nothing'\]"):
        kplug.fit(
            prune_config(tmp_path / "b", digits_run.run_dir, targets=["heads/nothing"]), plugins=plugins
        )


class StopAt(keras.callbacks.Callback):
    """Presses Ctrl-C after one batch (0-based ``batch`` of 0-based ``epoch``)."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.current, batch) == (self.epoch, self.batch):
            raise KeyboardInterrupt


class StopAtPlugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("stop-at", StopAt)


def checkpointed_prune_config(output: Path, source: Path, stop: dict | None = None) -> dict:
    """``prune_config`` with a checkpoint every epoch and every 2 batches (6 batches an epoch)."""
    config = prune_config(output, source, frequency=2)
    config["output"].update(checkpoint_every=1, checkpoint_every_steps=2)
    if stop is not None:  # callbacks may change on resume: the resumed run goes on without it
        config["callbacks"] = [*config["callbacks"], {"name": "stop-at", "options": stop}]
    return config


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, digits_run) -> kplug.FitResult:
    config = checkpointed_prune_config(tmp_path_factory.mktemp("prune") / "whole", digits_run.run_dir)
    return kplug.fit(config, plugins=kplug.load_plugins([kplug_compress], entry_points=False))


@pytest.mark.parametrize(
    ("stop", "resumed_at"),
    [({"epoch": 1, "batch": 0}, (1, 0)), ({"epoch": 0, "batch": 2}, (0, 2))],
    ids=["epoch-boundary", "mid-epoch"],
)
def test_resumed_pruning_run_ends_with_the_uninterrupted_weights_and_masks(
    tmp_path, digits_run, uninterrupted, stop, resumed_at
) -> None:
    plugins = kplug.load_plugins([kplug_compress, StopAtPlugin()], entry_points=False)
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(checkpointed_prune_config(tmp_path / "cut", digits_run.run_dir, stop), plugins=plugins)
    state = latest_checkpoint(tmp_path / "cut").state
    assert (state.stage, state.epoch, state.batch) == (0, *resumed_at)  # mid-way through the pruning stage
    resumed = kplug.fit(
        checkpointed_prune_config(tmp_path / "cut", digits_run.run_dir),
        resume=tmp_path / "cut",
        plugins=plugins,
    )
    for ours, theirs in zip(resumed.model.weights, uninterrupted.model.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6
        )
    pruned = dict(prunable_layers(uninterrupted.model, ["backbone/*"]))
    for path, layer in prunable_layers(resumed.model, ["backbone/*"]):
        ours = keras.ops.convert_to_numpy(kernel_variable(layer))
        theirs = keras.ops.convert_to_numpy(kernel_variable(pruned[path]))
        np.testing.assert_array_equal(ours == 0, theirs == 0, err_msg=path)
    assert resumed.report["pruning"]["layers"] == uninterrupted.report["pruning"]["layers"]


def test_resuming_with_other_targets_is_refused() -> None:
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")]
    )
    progress = PruningProgress()
    progress.initial = [0.0]  # a checkpoint saved mid-stage while pruning one layer
    progress.attach(model)
    callback = MagnitudePruning(targets=["heads/*"])
    callback.set_model(model)
    with pytest.raises(kplug.ConfigError, match=r"matches 2 layers, but the checkpoint .* pruned 1"):
        callback.on_train_begin()
