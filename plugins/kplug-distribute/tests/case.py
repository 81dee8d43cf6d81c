"""Run one small kplug training in this process and save its weights (tests run it in a subprocess).

Device counts must be fixed before the backend starts (XLA_FLAGS for JAX, logical
CPUs for TensorFlow), so each distributed case gets a fresh process:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \
        python case.py OUT_DIR '{"name": "data-parallel"}' [RUN_OVERRIDES_JSON]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def blobs(rows: int = 240, features: int = 8, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A small separable problem: ``rows`` examples of ``features`` features in ``classes`` classes."""
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(classes, features))
    y = np.arange(rows) % classes
    x = (centers[y] + rng.normal(0, 1, size=(rows, features))).astype("float32")
    order = rng.permutation(rows)
    return x[order], y[order]


def run_config(output: str, distribution: dict, **overrides) -> dict:
    """An MLP + classification run on ``blobs``; 192 training and 48 validation rows."""
    x, y = blobs()
    config = {
        "name": "dist",
        "seed": 5,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"validation": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16, 8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 3, "batch_size": 32, "verbose": 0, "optimizer": {"name": "sgd", "learning_rate": 0.1}},
        "distribution": distribution,
        "output": {"dir": output},
    }
    config.update(overrides)
    return config


def main() -> None:
    import kplug

    import kplug_distribute

    output, distribution = sys.argv[1], json.loads(sys.argv[2])
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    try:
        result = kplug.fit(run_config(output, distribution, **overrides), plugins=plugins)
    except kplug.KplugError as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}))
        return
    weights = {f"w{i}": np.asarray(w) for i, w in enumerate(result.model.get_weights())}
    np.savez(Path(output) / "weights.npz", **weights)
    print(json.dumps({"history": result.history, "distribution": result.report["distribution"]}))


if __name__ == "__main__":
    main()
