"""Shared helpers: run training cases in a fresh process with a fixed device count."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

CASE = Path(__file__).with_name("case.py")
REPO = Path(__file__).resolve().parents[3]


def run_cases(root: Path, cases: list[dict], backend: str, env: dict[str, str] | None = None) -> dict:
    """Run ``case.py`` in a new process (device counts are fixed when a backend starts)."""
    environment = {**os.environ, "KERAS_BACKEND": backend, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TF_CONFIG"):
        environment.pop(name, None)
    done = subprocess.run(
        [sys.executable, str(CASE), str(root), json.dumps(cases)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS ") :])


def launch_cli(cwd: Path, argv: list[str], backend: str, **env: str) -> str:
    """Run ``kplug ARGV`` (e.g. ``train run.yaml --nproc 2``) in ``cwd``; return its output."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "KPLUG_LOAD_PLUGINS": "distribute", **env}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", "from kplug.cli.main import entry_point; entry_point()", *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


# A 2-process run checkpoints every 2 of its 6 batches per epoch and keeps them all; its resumed
# copy starts from the middle of epoch 2 (a sharded, part-trained epoch, then a whole one).
CHECKPOINTS = {"checkpoint_every_steps": 2, "keep_checkpoints": 20}
MIDDLE = "epoch00001-batch000004-stage01"


def interrupted_copy(run_dir: Path, copy: Path, last: str = MIDDLE) -> Path:
    """``run_dir`` as it was when checkpoint ``last`` was the newest: a run interrupted there.

    The later checkpoints are removed; ``--resume`` trims the metrics log back to the
    checkpoint and overwrites the final model and report.
    """
    shutil.copytree(run_dir, copy)
    checkpoints = sorted((copy / "checkpoints").iterdir())
    assert last in [c.name for c in checkpoints], [c.name for c in checkpoints]
    for later in checkpoints[[c.name for c in checkpoints].index(last) + 1 :]:
        shutil.rmtree(later)
    return copy


def load_weights(path: Path) -> list[np.ndarray]:
    """The weights of a saved ``.keras`` model, loaded on one device in this process."""
    return keras.saving.load_model(path, compile=False).get_weights()


def weights(path: Path) -> list[np.ndarray]:
    """The arrays ``case.py`` saved, in model order."""
    saved = np.load(path)
    return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def moving_statistics(path: Path) -> dict[str, np.ndarray]:
    """The BatchNormalization moving means and variances of a saved ``.keras`` model, by variable path."""
    model = keras.saving.load_model(path, compile=False)
    return {v.path: np.asarray(v) for v in model.weights if v.path.rsplit("/", 1)[-1].startswith("moving_")}


def check_global_batchnorm(run_dir: Path, reference_dir: Path, tolerance: float) -> None:
    """A data-parallel run's BatchNorm trained on global-batch statistics, as the one-device reference did.

    Its report says so, and its moving statistics (updated from the batch statistics at every step,
    moved from their initial 0 and 1 by far more than ``tolerance``) equal the reference run's.
    """
    report = json.loads((run_dir / "report.json").read_text())
    assert report["distribution"]["batchnorm_statistics"] == "global batch"
    found = moving_statistics(run_dir / "model.keras")
    expected = moving_statistics(reference_dir / "model.keras")
    assert sorted(found) == sorted(expected) and len(found) == 2, sorted(found)
    for path, value in expected.items():
        initial = 0.0 if path.endswith("moving_mean") else 1.0
        assert np.abs(value - initial).max() > 100 * tolerance, path  # the statistics were trained
        difference = np.abs(found[path] - value).max()
        print(f"{run_dir.name} {path}: max difference from one device {difference:.3g}")
        assert difference < tolerance, path


def max_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest absolute difference between two lists of weights of the same shapes."""
    assert [x.shape for x in a] == [y.shape for y in b]
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


@pytest.fixture(autouse=True)
def _clean_process_env(monkeypatch, tmp_path):
    """No test inherits a launched group's variables, and each runs in its own directory."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TF_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
