"""The small digits run the compress tests train: a CNN on MNIST digits 0-4 (the slice in examples/data).

A module of its own, not ``conftest``: the suite shares a pytest session with other plugin
packages' suites (``nox -s tests``), whose conftests are also imported as ``conftest``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "data" / "mnist"
# the `idx` source's options for that slice
MNIST_OPTIONS = {
    "images": str(MNIST / "images-idx3-ubyte.gz"),
    "labels": str(MNIST / "labels-idx1-ubyte.gz"),
}


def digits_config(output: Path, **changes: Any) -> dict[str, Any]:
    """A small CNN on 240 MNIST digits 0-4: trains in a few seconds on a CPU."""
    config = {
        "name": "digits",
        "seed": 7,
        "data": {
            "source": "idx",
            "options": dict(MNIST_OPTIONS),
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
    return {**config, **changes}
