"""Shared helpers: a small run on separable blobs, trained on a local Ray cluster or in this process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-5  # float32 sums in another order (tests/distribute, kplug-distribute)


def blobs(rows: int = 240, features: int = 8, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A small separable problem: ``rows`` examples of ``features`` features in ``classes`` classes."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(classes, features))
    y = np.arange(rows) % classes
    x = (centers[y] + rng.normal(0, 1, size=(rows, features))).astype("float32")
    return x, y


def run_config(folder: Path, output: str, distribution: dict, epochs: int = 2) -> dict:
    """A tiny MLP run on ``blobs`` (192 training rows: 6 global batches of 32 per epoch)."""
    x, y = blobs()
    np.savez(folder / "data.npz", x=x, y=y)
    return {
        "name": "ray",
        "seed": 5,
        "data": {
            "source": "npz",
            "options": {"path": str(folder / "data.npz")},
            "split": {"validation": 0.2},
        },
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16, 8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "verbose": 0,
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
        },
        "distribution": distribution,
        "output": {"dir": str(folder / output), "checkpoint_every_steps": 2, "keep_checkpoints": 20},
    }


def cli_environment(backend: str) -> dict[str, str]:
    """The environment of a ``kplug`` subprocess: this checkout first, only the plugins the tests use."""
    environment = {**os.environ, "KERAS_BACKEND": backend, "KPLUG_LOAD_PLUGINS": "distribute,ray"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for name in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "TF_CONFIG",
        "RAY_ADDRESS",
    ):
        environment.pop(name, None)
    return environment


def max_difference(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """The largest absolute difference between two lists of weights of the same shapes."""
    assert [w.shape for w in first] == [w.shape for w in second]
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))
