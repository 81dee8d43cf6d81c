"""Fine-tune a small ResNet on the repo's MNIST slice, with and without augmentation.

    KERAS_BACKEND=jax python plugins/kplug-vision/examples/mnist/finetune.py
    KERAS_BACKEND=torch python plugins/kplug-vision/examples/mnist/finetune.py --epochs 6

Prints, and writes to ``results-<backend>.json``, the test accuracy of each variant. Run from
the repository root (the MNIST slice is ``examples/data/mnist``); run directories go to
``runs/vision-mnist-*``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import keras
import kplug

HERE = Path(__file__).resolve().parent
MNIST = HERE.parents[3] / "examples" / "data" / "mnist"

AUGMENT = [
    {"name": "crop", "options": {"scale": [0.85, 1.0]}},
    {"name": "rotation", "options": {"factor": 0.03, "fill_mode": "constant"}},
]


def run_config(name: str, augment: list[dict[str, Any]], epochs: int, output: Path) -> dict[str, Any]:
    """A small ResNet (keras-hub ResNetBackbone, 2 stages) on 600 training digits; 1,000 held out."""
    return {
        "name": name,
        "seed": 7,
        "data": {
            "source": "idx",
            "options": {
                "images": str(MNIST / "images-idx3-ubyte.gz"),
                "labels": str(MNIST / "labels-idx1-ubyte.gz"),
            },
            "split": {"validation": 0.2, "test": 0.5, "stratify": True},
        },
        "model": {
            "backbone": {
                "name": "resnet",
                "options": {"blocks": [1, 1], "stem_filters": 16, "block_type": "bottleneck_block"},
            },
            "heads": [{"name": "classification", "options": {"dropout": 0.2}}],
        },
        "augment": augment,
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "verbose": 0,
            "optimizer": {"name": "adamw", "learning_rate": 2e-3, "weight_decay": 1e-4},
            "schedule": {"name": "cosine"},
        },
        "output": {"dir": str(output / name), "overwrite": True},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", type=Path, default=Path("runs"))
    args = parser.parse_args()
    backend = keras.backend.backend()
    results = {}
    for name, augment in (("vision-mnist-plain", []), ("vision-mnist-augmented", AUGMENT)):
        started = time.perf_counter()
        result = kplug.fit(run_config(name, augment, args.epochs, args.output))
        seconds = time.perf_counter() - started
        results[name] = {
            "test_accuracy": round(result.metrics["accuracy"], 4),
            "test_examples": result.report["data"]["test"],
            "train_examples": result.report["data"]["train"],
            "seconds": round(seconds, 1),
        }
        print(
            f"{backend} {name}: test accuracy {result.metrics['accuracy']:.4f} ({seconds:.0f} s)", flush=True
        )
    (HERE / f"results-{backend}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
