"""Shared fixtures: small real runs on the MNIST slice shipped in examples/data.

Tests load this plugin explicitly (``entry_points=False``) so they stay hermetic; the
backend comes from KERAS_BACKEND (nox runs all three).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kplug
import pytest
from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

import kplug_compress

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "data" / "mnist"


@pytest.fixture(scope="session")
def plugins() -> kplug.Plugins:
    """Built-ins plus this plugin, whatever else is installed."""
    return kplug.load_plugins([kplug_compress], entry_points=False)


def digits_config(output: Path, **changes: Any) -> dict[str, Any]:
    """A small CNN on 400 MNIST digits 0-4: trains in a few seconds on a CPU."""
    config = {
        "name": "digits",
        "seed": 7,
        "data": {
            "source": "idx",
            "options": {
                "images": str(MNIST / "images-idx3-ubyte.gz"),
                "labels": str(MNIST / "labels-idx1-ubyte.gz"),
            },
            "where": {"label": [0, 1, 2, 3, 4]},
            "limit": 240,
            "split": {"validation": 0.0, "test": 0.25, "stratify": True},
        },
        "model": {
            "backbone": {"name": "small-cnn", "options": {"filters": [4, 8], "dense_units": 16}},
            "heads": [{"name": "classification", "id": "digits"}],
        },
        "train": {
            "optimizer": {"name": "adam", "learning_rate": 3e-3},
            "batch_size": 32,
            "epochs": 2,
            "verbose": 0,
        },
        "output": {"dir": str(output), "checkpoint_every": 0},
    }
    for key, value in changes.items():
        config[key] = value
    return config


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory, plugins: kplug.Plugins) -> kplug.FitResult:
    """One trained digits run shared by the tests that only read it."""
    return kplug.fit(digits_config(tmp_path_factory.mktemp("runs") / "digits"), plugins=plugins)


@pytest.fixture(scope="session")
def precision_plugins() -> kplug.Plugins:
    """Built-ins, this plugin and kplug-precision (the mixed-precision policies)."""
    import kplug_precision

    return kplug.load_plugins([kplug_compress, kplug_precision], entry_points=False)


@pytest.fixture(scope="session", params=["mixed_float16", "mixed_bfloat16"])
def mixed_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, precision_plugins
) -> kplug.FitResult:
    """The digits run trained under each mixed-precision policy (both run on every backend)."""
    output = tmp_path_factory.mktemp(request.param) / "digits"
    return kplug.fit(digits_config(output, precision={"policy": request.param}), plugins=precision_plugins)
