"""A nan/inf training loss stops the run naming where (default), or that batch's update is skipped."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
import yaml
from conftest import blob_config

import kplug
from kplug.cli.main import main
from kplug.data.batches import epoch_order
from kplug.train.checkpoint import complete_checkpoints
from kplug.train.metrics_file import read_metrics

BATCH = 16  # 240 training rows (no validation split): 15 batches per epoch
BAD_BATCH = 5  # 0-based index, in the first epoch, of the batch holding the poisoned row


def poisoned_blobs(blobs):
    """Blobs as a regression problem with one row of huge (finite) features, in batch BAD_BATCH
    of the first epoch: its squared error overflows to inf, on every backend."""
    x, y = blobs
    x = x.copy()
    row = epoch_order(1, 0, len(x))[BAD_BATCH * BATCH + 3]  # seed 1, epoch 0, no split: rows in order
    x[row] = 1e30
    return x, y.astype("float32")


def config(x, y, **train):
    c = blob_config(x, y)
    c["model"]["heads"] = [{"name": "regression"}]
    c["data"]["split"] = {"validation": 0}
    c["train"] = {"epochs": 3, "batch_size": BATCH, "verbose": 0, **train}
    return c


def test_stop_names_the_batch_and_the_last_good_checkpoint(blobs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")
    x, y = poisoned_blobs(blobs)
    np.savez(tmp_path / "poisoned.npz", x=x, y=y)
    c = config(x, y)
    c["data"] = {"source": "npz", "options": {"path": "poisoned.npz"}, "split": {"validation": 0}}
    c["output"] = {"dir": "runs/nan", "checkpoint_every_steps": 3, "keep_checkpoints": 5}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(c))

    assert main(["train", "run.yaml"]) == 2
    error = capsys.readouterr().err
    last = "runs/nan/checkpoints/epoch00000-batch000003-stage01"
    assert "The training loss became inf at epoch 1, batch 6 (stage 1)" in error, error
    assert f"The last good checkpoint is {last}" in error and "train.on_nonfinite: skip_batch" in error
    assert "Traceback" not in error
    # the step checkpoint due after batch 6 was not written with the nan weights
    assert [p.name for p in complete_checkpoints(tmp_path / "runs/nan/checkpoints")] == [last.split("/")[-1]]


def test_stop_without_step_checkpoints_writes_no_epoch_after_the_bad_batch(blobs, plugins):
    """With no synchronous batch callback, Keras runs the guard on a thread pool, so it may report
    a batch shortly after the first bad one (where the loss is nan); it still stops inside epoch 1."""
    x, y = poisoned_blobs(blobs)
    with pytest.raises(
        kplug.TrainingError, match=r"(inf|nan) at epoch 1, batch (\d+) .* No checkpoint"
    ) as error:
        kplug.fit(config(x, y), plugins=plugins)
    reported = int(re.search(r"batch (\d+)", str(error.value)).group(1))
    assert BAD_BATCH + 1 <= reported <= 15
    assert read_metrics(kplug.Trainer(config(x, y)).run_dir / "metrics.csv") == []


def test_skip_batch_drops_exactly_the_bad_updates(blobs, plugins, capsys):
    x, y = poisoned_blobs(blobs)
    c = config(x, y, on_nonfinite="skip_batch", optimizer={"learning_rate": 0.01})
    result = kplug.fit(c, plugins=plugins)
    assert result.report["stages"][0]["skipped_batches"] == 3  # the bad row once per epoch
    assert "skipped the update of 3 batch(es)" in capsys.readouterr().out
    assert int(keras.ops.convert_to_numpy(result.model.optimizer.iterations)) == 3 * 15 - 3
    for weight in result.model.weights:
        assert np.isfinite(keras.ops.convert_to_numpy(weight)).all(), weight.path
    assert np.isinf(result.history["loss"]).all()  # Keras' epoch mean includes the bad batch
    clean_x, clean_y = blobs
    error = np.abs(result.model.predict(clean_x, verbose=0)[:, 0] - clean_y).mean()
    assert error < 0.5, error  # it learns on (the labels are 0, 1, 2)


def test_skip_batch_changes_nothing_when_every_loss_is_finite(blobs, plugins):
    x, y = blobs
    plain = kplug.fit({**config(x, y), "output": {"dir": "runs/plain"}}, plugins=plugins)
    guarded = kplug.fit(
        {**config(x, y, on_nonfinite="skip_batch"), "output": {"dir": "runs/g"}}, plugins=plugins
    )
    assert guarded.report["stages"][0]["skipped_batches"] == 0
    for ours, theirs in zip(guarded.model.weights, plain.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


def test_skip_batch_resumes_and_saves_with_its_counter(blobs, plugins):
    x, y = poisoned_blobs(blobs)
    c = config(x, y, on_nonfinite="skip_batch")
    c["train"]["stages"] = [{"epochs": 1, "trainable": ["heads/*"]}, {"epochs": 2}]
    del c["train"]["epochs"]
    result = kplug.fit(c, plugins=plugins)
    assert [s["skipped_batches"] for s in result.report["stages"]] == [1, 2]
    reloaded = keras.saving.load_model(result.run_dir / "model.keras")  # compiled: the wrapper deserialises
    assert type(reloaded.optimizer).__name__ == "SkipNonFiniteOptimizer"
