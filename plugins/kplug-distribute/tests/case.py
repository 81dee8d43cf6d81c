"""Run one small kplug training in this process and save its weights (tests run it in a subprocess).

Device counts must be fixed before the backend starts (XLA_FLAGS for JAX, logical
CPUs for TensorFlow), so each distributed case gets a fresh process:

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \
        python case.py ROOT '[{"label": "dp", "distribution": {"name": "data-parallel"}}]'

Each case trains into ROOT/<label> and saves ROOT/<label>/weights.npz.
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


def images(rows: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """``blobs`` of 16 features as 4x4 one-channel images, for the BatchNorm CNN."""
    x, y = blobs(rows, features=16)
    return x.reshape(rows, 4, 4, 1), y


# BatchNormalization after its one convolution: its batch statistics are what data parallelism splits
BATCHNORM_CNN = {"name": "small-cnn", "options": {"filters": [4], "dense_units": 8, "batch_norm": True}}


def run_config(output: str, distribution: dict, batchnorm: bool = False, **overrides) -> dict:
    """An MLP + classification run on ``blobs``; 192 training and 48 validation rows.

    With ``batchnorm``, a small CNN with BatchNormalization on the same problem as images.
    """
    x, y = images() if batchnorm else blobs()
    config = {
        "name": "dist",
        "seed": 5,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"validation": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16, 8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {
            "epochs": 3,
            "batch_size": 32,
            "verbose": 0,
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
        },
        "distribution": distribution,
        "output": {"dir": output},
    }
    if batchnorm:
        config["model"]["backbone"] = BATCHNORM_CNN
    config.update(overrides)
    return config


def run_case(root: Path, case: dict) -> dict:
    """Train one case; a ``KplugError`` is returned as data, so tests can check bad input."""
    import kplug

    import kplug_distribute

    output = str(root / case["label"])
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    overrides = dict(case.get("overrides", {}))
    limit = overrides.pop("limit", None)
    batchnorm = bool(case.get("batchnorm"))
    distribution = case.get("distribution", {"name": "single-device"})
    config = run_config(output, distribution, batchnorm=batchnorm, **overrides)
    if limit is not None:
        config["data"]["limit"] = limit
    if case.get("npz"):  # the same data from a file, as a `kplug train` config reads it
        x, y = images() if batchnorm else blobs()
        path = root / ("images.npz" if batchnorm else "blobs.npz")
        np.savez(path, x=x, y=y)
        config["data"] = {**config["data"], "source": "npz", "options": {"path": str(path)}}
    if "init_from" in case:
        config["model"]["backbone"]["init"] = {"from": str(root / case["init_from"])}
    try:
        result = kplug.fit(config, plugins=plugins)
    except kplug.KplugError as error:
        return {"error": type(error).__name__, "message": str(error), "wrote": Path(output).exists()}
    np.savez(Path(output) / "weights.npz", *[np.asarray(w) for w in result.model.get_weights()])
    return {
        "history": result.history,
        "distribution": result.report["distribution"],
        "init": result.report["init"],
        "data": result.report["data"],
        "metrics": result.report["metrics"],
    }


def load_case(root: Path, case: dict) -> dict:
    """Load a finished run's model.keras with no distribution and save its weights."""
    import keras

    model = keras.saving.load_model(root / case["run"] / "model.keras", compile=False)
    np.savez(root / f"{case['label']}.npz", *[np.asarray(w) for w in model.get_weights()])
    return {"loaded": True}


def main() -> None:
    """``case.py ROOT CASES_JSON``: run each case in order; print one JSON object of results."""
    root, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
    results = {}
    for case in cases:
        results[case["label"]] = load_case(root, case) if "run" in case else run_case(root, case)
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    main()
