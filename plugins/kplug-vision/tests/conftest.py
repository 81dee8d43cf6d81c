"""Fixtures: this plugin passed in Python (hermetic), a few MNIST digits from the repo's slice."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from kplug.testing import (  # noqa: F401
    clear_plugin_environment,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    read_idx_file,
)

import kplug_vision

MNIST = Path(__file__).resolve().parents[3] / "examples" / "data" / "mnist"

# The smallest network of each family: trains a step on CPU in seconds.
TINY_BACKBONES = {
    "resnet": {"blocks": [1], "stem_filters": 8, "image_size": 32},
    "vit": {
        "patch_size": 8,
        "num_layers": 1,
        "num_heads": 2,
        "hidden_dim": 16,
        "mlp_dim": 32,
        "image_size": 32,
    },
    "efficientnet": {"width_coefficient": 0.1, "depth_coefficient": 0.1, "stages": 2, "image_size": 32},
    "mobilenetv3": {"alpha": 0.25, "minimalistic": True, "image_size": 32},
    "convnext": {"depths": [1, 1, 1, 1], "projection_dims": [8, 8, 16, 16], "image_size": 32},
}


@pytest.fixture
def plugins() -> kplug.Plugins:
    """Built-ins plus kplug-vision passed in Python, whatever else is installed."""
    return kplug.load_plugins([kplug_vision], entry_points=False)


@pytest.fixture(autouse=True)
def _seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test in its own directory, with Keras' global seed set."""
    monkeypatch.chdir(tmp_path)
    clear_plugin_environment(monkeypatch)
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The repo's 2,000-image MNIST slice: uint8 images (N, 28, 28) and integer labels."""
    images = read_idx_file(MNIST / "images-idx3-ubyte.gz")
    labels = read_idx_file(MNIST / "labels-idx1-ubyte.gz").astype("int64")
    return images, labels
