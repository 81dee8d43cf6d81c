"""Kill test: ``kplug train`` killed with SIGKILL at seeded random points never corrupts its run
directory, and resuming it ends with exactly the weights of an uninterrupted run.

The run is killed three times in a row (each resume is killed again): after a random
training batch, inside a random checkpoint write (before or after its files are complete,
never renamed into place) and halfway through deleting an old checkpoint. The test
driver (``kill_driver.py``) stops the process at that point and the test kills it, so
nothing depends on sleeps. Runs on the backend in KERAS_BACKEND (nox runs all three).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from conftest import blob_config

from kplug.cli.main import main
from kplug.config.load import read_config_file
from kplug.model.checkpoint_init import load_model_file
from kplug.train.checkpoint import NAME, RNG_FILE, STATE_FILE, TrainingState
from kplug.train.metrics_file import read_metrics

DRIVER = Path(__file__).with_name("kill_driver.py")
BATCHES = 48  # 192 training rows / batch 16 = 12 per epoch, 4 epochs


def write_run_config(tmp_path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """Shuffled batches, dropout, noise augmentation, two stages and step checkpoints."""
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = blob_config(x, y)
    config["data"] = {"source": "npz", "options": {"path": "blobs.npz"}, "split": {"validation": 0.2}}
    config["model"]["backbone"]["options"] = {"units": [16], "dropout": 0.3}
    config["augment"] = [{"name": "gaussian-noise", "options": {"stddev": 0.05}}]
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,
        "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 2, "learning_rate": 3e-4}],
    }
    config["output"] = {"dir": "runs/cut", "checkpoint_every_steps": 5, "keep_checkpoints": 2}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_paused(tmp_path: Path, argv: list[str], pause: dict) -> subprocess.Popen:
    """Start the driver and return once it has stopped at ``pause``."""
    marker = tmp_path / "paused"
    marker.unlink(missing_ok=True)
    env = {**os.environ, "KPLUG_TEST_PAUSE": json.dumps({**pause, "marker": str(marker)})}
    log = (tmp_path / "driver.log").open("w")
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), *argv], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 300
    while not marker.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                f"the run did not reach {pause} (exit {process.returncode}):\n"
                + (tmp_path / "driver.log").read_text()[-3000:]
            )
        time.sleep(0.02)  # polling for the marker file, not timing the signal
    return process


def run_until_killed(tmp_path: Path, argv: list[str], pause: dict) -> None:
    """Run the driver up to ``pause`` and kill it there with SIGKILL."""
    process = start_paused(tmp_path, argv, pause)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def check_run_dir(run_dir: Path) -> list[str]:
    """Every checkpoint on disk is complete and loadable; returns their names."""
    read_config_file(run_dir / "config.yaml")
    if (run_dir / "metrics.csv").exists():
        read_metrics(run_dir / "metrics.csv")
    names = []
    for path in sorted((run_dir / "checkpoints").iterdir()):
        if path.name.startswith(".partial-"):
            continue  # a write or delete that was cut short: never taken for a checkpoint
        assert NAME.match(path.name), path
        assert sorted(p.name for p in path.iterdir()) == ["model.keras", RNG_FILE, STATE_FILE], path
        load_model_file(path / "model.keras")
        with np.load(path / RNG_FILE, allow_pickle=False) as saved:
            assert saved.files
        TrainingState(**json.loads((path / STATE_FILE).read_text()))
        names.append(path.name)
    return names


def final_weights(run_dir: Path) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w) for w in load_model_file(run_dir / "model.keras").weights]


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_weights(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")  # built-ins only, here and in the killed runs
    x, y = blobs
    write_run_config(tmp_path, x, y)
    rng = np.random.default_rng(1125)
    started = time.perf_counter()

    assert main(["train", "run.yaml", "--output", "runs/straight"]) == 0
    run_dir = tmp_path / "runs" / "cut"

    # 1. killed between two training batches, before any checkpoint or after a few
    after = int(rng.integers(3, 20))
    run_until_killed(tmp_path, ["train", "run.yaml"], {"kind": "batch", "after": after})
    check_run_dir(run_dir)

    # 2. killed inside a checkpoint write: its temporary directory is left, never a checkpoint
    phase = str(rng.choice(["after-model", "before-rename"]))
    pause = {"kind": "write", "nth": int(rng.integers(1, 4)), "phase": phase}
    run_until_killed(tmp_path, ["train", "--resume", "runs/cut"], pause)
    check_run_dir(run_dir)
    assert any(p.name.startswith(".partial-") for p in (run_dir / "checkpoints").iterdir())

    # 3. killed while deleting an old checkpoint (keep_checkpoints: 2)
    pause = {"kind": "prune", "nth": int(rng.integers(1, 3))}
    run_until_killed(tmp_path, ["train", "--resume", "runs/cut"], pause)
    check_run_dir(run_dir)

    # 4. the last resume finishes; leftovers are gone and the weights are the uninterrupted run's
    assert main(["train", "--resume", "runs/cut"]) == 0
    check_run_dir(run_dir)
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".partial-")]
    rows = read_metrics(run_dir / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    straight = read_metrics(tmp_path / "runs" / "straight" / "metrics.csv")
    assert rows == straight  # every logged metric bit for bit, the means of epochs cut mid-way included
    for ours, theirs in zip(final_weights(run_dir), final_weights(tmp_path / "runs/straight"), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    print(f"kill test on {keras.backend.backend()}: {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_ctrl_c_checkpoints_where_it_stopped_and_resumes_exactly(blobs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")
    x, y = blobs
    write_run_config(tmp_path, x, y)
    config = yaml.safe_load((tmp_path / "run.yaml").read_text())
    config["output"] = {"dir": "runs/cut", "checkpoint_every_steps": 0}  # only the interrupt's mid-epoch one
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "run.yaml", "--output", "runs/straight"]) == 0

    # SIGINT after batch 19 of 48: the run finishes batch 20 at most, checkpoints and exits 130
    process = start_paused(tmp_path, ["train", "run.yaml"], {"kind": "interrupt", "after": 19})
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    output = (tmp_path / "driver.log").read_text()
    run_dir = tmp_path / "runs" / "cut"
    names = check_run_dir(run_dir)
    assert names[-1] == "epoch00001-batch000007-stage01", names  # epoch 2 (index 1), 7 of 12 batches
    assert (
        f"kplug: interrupted at epoch 2, batch 7; checkpoint written: runs/cut/checkpoints/{names[-1]}. "
        f"Continue with: kplug train --resume runs/cut"
    ) in output, output[-2000:]
    assert "Traceback" not in output

    assert main(["train", "--resume", "runs/cut"]) == 0
    assert "Resuming runs/cut at stage 1, epoch 2." in capsys.readouterr().out
    assert read_metrics(run_dir / "metrics.csv") == read_metrics(tmp_path / "runs/straight/metrics.csv")
    for ours, theirs in zip(final_weights(run_dir), final_weights(tmp_path / "runs/straight"), strict=True):
        np.testing.assert_array_equal(ours, theirs)
