"""Shared fixtures. Tests use built-in plugins only (no installed entry points) unless a
test is about entry points; the backend comes from KERAS_BACKEND (nox runs all three)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import kplug
from kplug.testing import (  # noqa: F401
    clear_plugin_environment,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
)

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "examples" / "data" / "mnist"


@pytest.fixture
def plugins():
    """Built-in plugins only: hermetic, whatever is installed."""
    return kplug.load_plugins(entry_points=False)


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    """Run every test in its own directory so relative run directories never leak."""
    monkeypatch.chdir(tmp_path)
    clear_plugin_environment(monkeypatch)


def mnist_data(limit: int | None = None) -> dict:
    """The ``data`` section reading the MNIST slice shipped in examples/data (first ``limit`` rows)."""
    data = {
        "source": "idx",
        "options": {
            "images": str(MNIST / "images-idx3-ubyte.gz"),
            "labels": str(MNIST / "labels-idx1-ubyte.gz"),
        },
    }
    return data if limit is None else {**data, "limit": limit}


@pytest.fixture
def mnist_options():
    """Options of the idx source for the MNIST slice shipped in examples/data."""
    return mnist_data()["options"]


@pytest.fixture
def blobs():
    """A small, separable 3-class problem: 240 rows of 8 features."""
    return make_blobs()


def make_blobs():
    """The ``blobs`` data, for module-scoped fixtures."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 8))
    y = np.repeat(np.arange(3), 80)
    x = (centers[y] + rng.normal(0, 1, size=(240, 8))).astype("float32")
    order = rng.permutation(240)
    return x[order], y[order]


class InterruptAt:
    """A plugin that presses Ctrl-C at the end of one epoch (counted over the run, from 0)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


class InterruptOnce(keras.callbacks.Callback):
    """Presses Ctrl-C after batch ``batch`` of epoch ``epoch`` (of a stage's fit), the first time only.

    Tests reset ``InterruptOnce.fired = False`` before the run they interrupt."""

    fired = False

    def __init__(self, epoch: int = 0, batch: int = 0):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not InterruptOnce.fired and (self.current, batch) == (self.epoch, self.batch):
            InterruptOnce.fired = True
            raise KeyboardInterrupt


class InterruptPlugin:
    """Registers InterruptOnce as the callback component ``interrupt-once``."""

    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("interrupt-once", InterruptOnce)


def blob_config(x, y, **overrides):
    """A minimal run config on in-memory arrays (MLP + classification head)."""
    config = {
        "name": "blobs",
        "seed": 1,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"validation": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 3, "batch_size": 32, "verbose": 0},
        "output": {"dir": "runs/blobs"},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


def install_distribution(site: Path, name: str, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install module ``name`` (``source``) in ``site`` as a real distribution: a dist-info with a
    ``kplug`` entry point, version 1.2.3, importable from ``site`` (put first on ``sys.path``)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[kplug]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, name, raising=False)
