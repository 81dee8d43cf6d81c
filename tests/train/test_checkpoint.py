"""Checkpoints at every epoch and stage boundary; an interrupted run resumes where it stopped."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from conftest import InterruptOnce, InterruptPlugin, blob_config, make_blobs

import kplug
from kplug.cli.main import main
from kplug.model.paths import variable_paths
from kplug.train.checkpoint import (
    STATE_FILE,
    TrainingState,
    checkpoint_name,
    complete_checkpoints,
    latest_checkpoint,
    write_checkpoint,
)


def staged_config(x, y):
    config = blob_config(x, y)
    config["train"] = {
        "verbose": 0,
        "batch_size": 48,
        "stages": [{"epochs": 3, "trainable": ["heads/*"]}, {"epochs": 2, "learning_rate": 1e-4}],
    }
    return config


class InterruptAt:
    """A plugin that presses Ctrl-C at the end of one epoch, and records optimizer steps."""

    def __init__(self, epoch: int | None):
        self.epoch = epoch
        self.iterations: dict[int, int] = {}

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        self.iterations[epoch] = int(keras.ops.convert_to_numpy(run.model.optimizer.iterations))
        if epoch == self.epoch:
            raise KeyboardInterrupt


def metric_rows(run_dir):
    with (run_dir / "metrics.csv").open() as handle:
        return [(int(r["stage"]), int(r["epoch"])) for r in csv.DictReader(handle)]


def old_name(state: TrainingState) -> str:
    """A checkpoint's name before stages counted from 1: the 0-based index of the stage to continue."""
    return f"epoch{state.epoch:05d}-batch{state.batch:06d}-stage{state.stage:02d}"


def rename_to_old_names(run_dir):
    for path in complete_checkpoints(run_dir / "checkpoints"):
        state = TrainingState(**json.loads((path / STATE_FILE).read_text()))
        path.rename(path.with_name(old_name(state)))


# mid stage 1, end of stage 1, mid stage 2; names before stages counted from 1 (old-names) in the
# quick set where the stage number shifts (mid stage 2), at every stop in the slow set
@pytest.mark.parametrize(
    ("stop_after_epoch", "old_names"),
    [
        pytest.param(1, False, id="1-names"),
        pytest.param(2, False, id="2-names"),
        pytest.param(3, False, id="3-names"),
        pytest.param(1, True, id="1-old-names", marks=pytest.mark.slow),
        pytest.param(2, True, id="2-old-names", marks=pytest.mark.slow),
        pytest.param(3, True, id="3-old-names"),
    ],
)
def test_interrupted_run_resumes_where_it_stopped(blobs, stop_after_epoch, old_names):
    x, y = blobs
    spy = InterruptAt(stop_after_epoch)
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(staged_config(x, y), plugins=kplug.load_plugins([spy], entry_points=False))
    run_dir = kplug.Trainer(staged_config(x, y)).run_dir
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint.state.epoch == stop_after_epoch  # the interrupted epoch has no checkpoint
    # stages count from 1 in names, as in metrics.csv; the end of stage 1 is its own checkpoint
    expected = {1: "epoch00001-batch000000-stage01", 2: "epoch00002-batch000000-stage01"}
    expected[3] = "epoch00003-batch000000-stage01-end"
    assert checkpoint.path.name == expected[stop_after_epoch]
    if old_names:  # a run directory written before: stage00 is the first stage
        rename_to_old_names(run_dir)
        assert latest_checkpoint(run_dir).path.name == old_name(checkpoint.state)

    with pytest.raises(kplug.DataError, match="in-memory data"):
        kplug.fit(resume=run_dir)
    resumed_spy = InterruptAt(None)
    plugins = kplug.load_plugins([resumed_spy], entry_points=False)
    result = kplug.fit(staged_config(x, y), resume=run_dir, plugins=plugins)
    assert metric_rows(run_dir) == [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
    assert len(result.history["loss"]) == 5
    assert [s["epochs"] for s in result.report["stages"]] == [3, 2]
    steps = 4  # 192 training rows / batch 48
    first = min(resumed_spy.iterations)
    # optimizer state continues mid-stage; a new stage starts a new optimizer
    expected = (first + 1) * steps if first < 3 else (first - 2) * steps
    assert resumed_spy.iterations[first] == expected
    assert (run_dir / "model.keras").is_file() and (run_dir / "report.json").is_file()
    assert [p.name for p in complete_checkpoints(run_dir / "checkpoints")] == [
        "epoch00005-batch000000-stage02",
        "epoch00005-batch000000-stage02-end",
    ]


def test_checkpoint_restores_weights_exactly(blobs, plugins):
    x, y = blobs
    result = kplug.fit(blob_config(x, y), plugins=plugins)
    checkpoint = latest_checkpoint(result.run_dir)
    assert checkpoint.state.epoch == 3 and checkpoint.state.stage == 1
    saved = keras.saving.load_model(checkpoint.model_file, compile=False)
    for ours, theirs in zip(result.model.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


def test_partial_checkpoints_are_ignored_and_old_ones_pruned(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    for epoch in range(1, 5):
        write_checkpoint(tmp_path, model, TrainingState(0, 0, epoch))
    (tmp_path / "checkpoints" / ".partial-abc").mkdir()
    (tmp_path / "checkpoints" / "epoch00009-batch000000-stage01").mkdir()  # no files: incomplete
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert "epoch00001-batch000000-stage01" not in names and "epoch00004-batch000000-stage01" in names
    assert latest_checkpoint(tmp_path).state.epoch == 4
    assert not (tmp_path / "checkpoints" / ".partial-abc").exists()


def test_checkpoint_names_count_stages_from_one():
    assert checkpoint_name(TrainingState(0, 0, 2)) == "epoch00002-batch000000-stage01"
    assert checkpoint_name(TrainingState(0, 0, 1, batch=7)) == "epoch00001-batch000007-stage01"
    assert checkpoint_name(TrainingState(1, 3, 3)) == "epoch00003-batch000000-stage01-end"
    assert checkpoint_name(TrainingState(1, 3, 3, batch=2)) == "epoch00003-batch000002-stage02"
    assert checkpoint_name(TrainingState(1, 3, 5)) == "epoch00005-batch000000-stage02"
    assert checkpoint_name(TrainingState(2, 5, 5)) == "epoch00005-batch000000-stage02-end"


def test_old_and_new_names_sort_in_training_order(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    # the end of stage 1's last epoch, the end of stage 1, an epoch and a part-epoch of stage 2
    states = [
        TrainingState(0, 0, 3),
        TrainingState(1, 3, 3),
        TrainingState(1, 3, 4),
        TrainingState(1, 3, 4, batch=2),
    ]
    for state in states:
        write_checkpoint(tmp_path, model, state, keep=10)
    root = tmp_path / "checkpoints"
    for path in complete_checkpoints(root)[:2]:  # the older two as an earlier kplug named them
        state = TrainingState(**json.loads((path / STATE_FILE).read_text()))
        path.rename(path.with_name(old_name(state)))
    found = complete_checkpoints(root)
    assert [p.name for p in found] == [
        "epoch00003-batch000000-stage00",
        "epoch00003-batch000000-stage01",
        "epoch00004-batch000000-stage02",
        "epoch00004-batch000002-stage02",
    ]
    assert [TrainingState(**json.loads((p / STATE_FILE).read_text())) for p in found] == states
    assert latest_checkpoint(tmp_path).state == states[-1]


def test_cli_interrupt_message_and_resume(blobs, tmp_path, capsys, monkeypatch):
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    import yaml

    config = staged_config(x, y)
    config["data"] = {"source": "npz", "options": {"path": "blobs.npz"}, "split": {"validation": 0.2}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    spy = InterruptAt(1)
    monkeypatch.setattr("kplug.train.trainer.get_plugins", lambda plugins=None: kplug.load_plugins([spy]))
    assert main(["train", "run.yaml"]) == 130
    assert "continue with: kplug train --resume runs/blobs" in capsys.readouterr().err
    spy.epoch = None
    assert main(["train", "--resume", "runs/blobs"]) == 0
    assert "Resuming runs/blobs at stage 1, epoch 2." in capsys.readouterr().out
    assert metric_rows(tmp_path / "runs" / "blobs")[-1] == (2, 5)


def test_resume_of_something_that_is_not_a_run(tmp_path):
    with pytest.raises(kplug.CheckpointError, match="not a kplug run directory"):
        kplug.Trainer(resume=tmp_path)


def test_checkpoint_every_n_epochs(blobs, plugins):
    x, y = blobs
    config = staged_config(x, y)
    config["output"] = {"dir": "runs/every", "checkpoint_every": 2}
    written = []

    class Watch:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_epoch_end(run, epoch, logs):
            checkpoint = latest_checkpoint(run.run_dir)
            written.append(checkpoint.state.epoch if checkpoint else None)

    kplug.fit(config, plugins=kplug.load_plugins([Watch()], entry_points=False))
    # the hook runs before its epoch's checkpoint; checkpoints: epoch 2, the end of stage 1 (epoch 3), epoch 5
    assert written == [None, None, 2, 3, 3]


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_resumed_run_equals_the_uninterrupted_one_when_batches_are_whole(blobs):
    """With one batch per epoch the data order cannot differ, so resume must be exact."""
    x, y = blobs

    def config(name):
        c = staged_config(x, y)
        c["train"]["batch_size"] = 192  # all training rows
        c["output"] = {"dir": f"runs/{name}"}
        return c

    whole = kplug.fit(config("whole"), plugins=kplug.load_plugins(entry_points=False))
    for stop in (1, 3):
        with pytest.raises(KeyboardInterrupt):
            kplug.fit(
                config(f"cut{stop}"), plugins=kplug.load_plugins([InterruptAt(stop)], entry_points=False)
            )
        resumed = kplug.fit(
            config(f"cut{stop}"), resume=f"runs/cut{stop}", plugins=kplug.load_plugins(entry_points=False)
        )
        for ours, theirs in zip(resumed.model.weights, whole.model.weights, strict=True):
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), rtol=0, atol=1e-6
            )
        np.testing.assert_allclose(resumed.history["loss"], whole.history["loss"], rtol=1e-5)


def shuffled_dropout_config(x, y, run_dir, interrupt=None):
    config = blob_config(x, y)
    config["model"]["backbone"]["options"] = {"units": [16], "dropout": 0.3}
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.05}}]
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,  # 192 rows: 12 shuffled batches per epoch
        "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 2, "learning_rate": 3e-4}],
    }
    config["output"] = {"dir": str(run_dir), "checkpoint_every_steps": 5}
    if interrupt is not None:
        config["callbacks"] = [{"name": "interrupt-once", "options": interrupt}]
    return config


@pytest.fixture(scope="module")
def straight_weights(tmp_path_factory):
    """The final weights of the uninterrupted run (trained once for every interruption point)."""
    x, y = make_blobs()
    plugins = kplug.load_plugins([InterruptPlugin()], entry_points=False)
    never = {"epoch": 99, "batch": 0}
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    straight = kplug.fit(shuffled_dropout_config(x, y, run_dir, never), plugins=plugins)
    return [keras.ops.convert_to_numpy(weight) for weight in straight.model.weights]


@pytest.mark.parametrize(
    "interrupt",
    [{"epoch": 0, "batch": 7}, {"epoch": 1, "batch": 11}, {"epoch": 3, "batch": 2}],
    ids=["mid-epoch", "end-of-stage", "early-in-last-epoch"],
)
def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(blobs, interrupt, straight_weights):
    """Shuffled batches, dropout and noise: data order and RNG state come back with the checkpoint."""
    x, y = blobs
    plugins = kplug.load_plugins([InterruptPlugin()], entry_points=False)
    InterruptOnce.fired = False
    config = shuffled_dropout_config(x, y, "runs/cut", interrupt)
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(config, plugins=plugins)
    resumed = kplug.fit(config, resume="runs/cut", plugins=plugins)
    for ours, theirs in zip(resumed.model.weights, straight_weights, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(ours), theirs, atol=1e-6, rtol=1e-5)
    assert len(resumed.history["loss"]) == 4


def test_resume_refuses_a_different_config(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    kplug.fit(config, plugins=plugins)
    changed = blob_config(x, y)
    changed["train"] = {**changed["train"], "batch_size": 8}
    with pytest.raises(kplug.ConfigError, match=r"train.batch_size: 32 in the run, 8 now"):
        kplug.fit(changed, resume="runs/blobs", plugins=plugins)


OTHER_BACKENDS = {
    "jax": ("torch", "tensorflow"),
    "torch": ("tensorflow", "jax"),
    "tensorflow": ("jax", "torch"),
}


def other_installed_backend() -> str:
    """Another Keras backend installed in this environment (nox installs one per session)."""
    for name in OTHER_BACKENDS[keras.backend.backend()]:
        if importlib.util.find_spec(name) is not None:
            return name
    pytest.skip("no second Keras backend is installed here")


@pytest.mark.slow
def test_a_run_from_another_backend_resumes_and_initialises_here(blobs, tmp_path, plugins):
    """Train on one backend in a subprocess, continue it (and init from it) on this one."""
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = {
        "name": "portable",
        "seed": 3,
        "data": {"source": "npz", "options": {"path": str(tmp_path / "blobs.npz")}, "split": {"test": 0.25}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [{"name": "classification"}],
        },
        "train": {
            "verbose": 0,
            "batch_size": 32,
            "optimizer": {"learning_rate": 0.02},
            "stages": [{"epochs": 1, "trainable": ["heads/*"]}, {"epochs": 2}],
        },
        "output": {"dir": str(tmp_path / "runs/portable"), "keep_checkpoints": 10},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    other = other_installed_backend()
    env = {**os.environ, "KERAS_BACKEND": other, "KPLUG_LOAD_PLUGINS": "none"}
    # on the other backend: the whole run, then a copy of it resumed there from its mid-stage checkpoint
    # (epoch 2 of stage 2, so the weights, the Adam moments and the step count all come from it)
    script = (
        "import shutil, sys; from pathlib import Path; from kplug.cli.main import main\n"
        "assert main(['train', 'run.yaml']) == 0\n"
        "shutil.copytree('runs/portable', 'runs/own')\n"
        "for late in sorted(Path('runs/own/checkpoints').iterdir())[3:]: shutil.rmtree(late)\n"
        "sys.exit(main(['train', '--resume', 'runs/own']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = tmp_path / "runs/portable"
    assert json.loads((run_dir / "report.json").read_text())["backend"] == other

    # init a fresh model here from the other backend's run: same predictions
    trained = keras.saving.load_model(run_dir / "model.keras", compile=False)
    init = {
        **config,
        "model": {
            **config["model"],
            "backbone": {**config["model"]["backbone"], "init": {"from": str(run_dir)}},
        },
    }
    init["train"] = {"verbose": 0, "stages": [{"epochs": 1, "trainable": ["heads/*"], "learning_rate": 1e-9}]}
    init["output"] = {"dir": str(tmp_path / "runs/init")}
    model = kplug.fit(init, plugins=plugins).model
    np.testing.assert_allclose(model.predict(x, verbose=0), trained.predict(x, verbose=0), atol=1e-4)

    # resume the other backend's run here from the same checkpoint
    for late in sorted((run_dir / "checkpoints").iterdir())[3:]:
        shutil.rmtree(late)
    result = kplug.fit(config, resume=run_dir, plugins=plugins)
    assert result.report["backend"] == keras.backend.backend() and len(result.history["loss"]) == 3
    assert result.report["stages"][1]["optimizer_state"].startswith("restored from the checkpoint at epoch 2")
    # it continues as the same run resumed on its own backend does, and ends where the uninterrupted
    # run ended, to float precision (the backends round differently)
    here = variable_paths(result.model)
    own = keras.saving.load_model(tmp_path / "runs/own/model.keras", compile=False)
    for there in (variable_paths(own), variable_paths(trained)):
        assert list(here) == list(there)
        for path, variable in here.items():
            np.testing.assert_allclose(
                keras.ops.convert_to_numpy(variable),
                keras.ops.convert_to_numpy(there[path]),
                rtol=1e-4,
                atol=1e-5,
                err_msg=path,
            )
    assert result.metrics["accuracy"] > 0.8


@pytest.mark.skipif(keras.backend.backend() == "torch", reason="steps_per_execution must be 1 on torch")
@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick on tensorflow
def test_resume_is_exact_with_several_steps_per_execution(blobs):
    """Keras calls batch callbacks once per 4 batches: step checkpoints land on block boundaries."""
    x, y = blobs
    plugins = kplug.load_plugins([InterruptPlugin()], entry_points=False)

    def config(run_dir, interrupt):
        c = shuffled_dropout_config(x, y, run_dir, interrupt)
        c["train"]["compile"] = {"steps_per_execution": 4}
        return c

    straight = kplug.fit(config("runs/straight", {"epoch": 99, "batch": 0}), plugins=plugins)
    InterruptOnce.fired = False
    cut = config("runs/cut", {"epoch": 0, "batch": 11})  # the end of the third block
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(cut, plugins=plugins)
    # every 5 batches, at the block boundary at or after it: after batch 8
    assert [c.name for c in complete_checkpoints(Path("runs/cut") / "checkpoints")][-1].startswith(
        "epoch00000-batch000008"
    )
    resumed = kplug.fit(cut, resume="runs/cut", plugins=plugins)
    assert resumed.model.steps_per_execution == 4
    for ours, theirs in zip(resumed.model.weights, straight.model.weights, strict=True):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs), atol=1e-6, rtol=1e-5
        )
