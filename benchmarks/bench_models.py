"""The benchmark models, built three ways with the same architecture: kplug config, plain Keras, torch.nn.

kplug's model is ``inputs -> backbone -> head``; the classification head is ``Flatten -> Dense(logits)``
(kplug/plugin/head.py), so a plain-Keras twin has one more (free) Flatten after the backbone. Every builder
here is checked against the others by parameter count in the harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "examples" / "data" / "mnist"
NUM_CLASSES = 10


@dataclass(frozen=True)
class Spec:
    """One benchmark model: its kplug backbone and options, and analytic FLOPs per training sample."""

    name: str
    backbone: str
    options: dict[str, Any]
    mlp_units: tuple[int, ...] = ()
    cnn_filters: tuple[int, ...] = ()
    dense_units: int = 0

    def forward_flops(self) -> int:
        """Multiply-adds x2 of one example's forward pass (matmuls and convolutions only)."""
        if self.mlp_units:
            widths = [28 * 28, *self.mlp_units, NUM_CLASSES]
            return sum(2 * a * b for a, b in zip(widths, widths[1:], strict=False))
        flops, size, channels = 0, 28, 1
        for width in self.cnn_filters:
            flops += 2 * size * size * width * 9 * channels
            size, channels = size // 2, width
        flat = size * size * channels
        return flops + 2 * flat * self.dense_units + 2 * self.dense_units * NUM_CLASSES

    def train_flops(self) -> int:
        """Forward + backward (about 3x the forward pass) per training example."""
        return 3 * self.forward_flops()


SPECS = {
    "mlp": Spec("mlp", "mlp", {"units": [256]}, mlp_units=(256,)),
    "cnn": Spec(
        "cnn", "small-cnn", {"filters": [16, 32], "dense_units": 64}, cnn_filters=(16, 32), dense_units=64
    ),
}


def mnist(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size`` MNIST digits (the 2,000 shipped with the examples, repeated): float32 NHWC, int64 labels."""
    from kplug.builtin.datasets import idx

    examples = idx(str(MNIST / "images-idx3-ubyte.gz"), str(MNIST / "labels-idx1-ubyte.gz"))
    reps = -(-size // len(examples.features))
    x = np.concatenate([examples.features] * reps)[:size]
    y = np.concatenate([examples.targets["label"]] * reps)[:size]
    return np.ascontiguousarray(x), y


def kplug_config(
    spec: Spec, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, out: Path, callbacks: list[str]
) -> dict[str, Any]:
    """The kplug run config training ``spec`` on in-memory arrays: no validation, no test split."""
    return {
        "name": f"bench-{spec.name}",
        "data": {"source": "arrays", "options": {"x": x, "y": y}},
        "model": {
            "backbone": {"name": spec.backbone, "options": spec.options},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": epochs, "batch_size": batch_size, "verbose": 0},
        "callbacks": [{"name": name} for name in callbacks],
        "output": {"dir": str(out), "overwrite": True},
    }


def plain_keras_model(spec: Spec, nested: bool = True):
    """The same network as kplug builds for ``spec``, written with plain Keras layers.

    ``nested`` (the like-for-like): shaped as kplug's model and any Keras transfer-learning model,
    ``inputs -> backbone (a Model) -> head (a Sequential)``. Not nested: the same layers in one flat
    graph, which on torch's eager dispatch saves two sub-model calls per step.
    """
    import keras

    inputs = keras.Input((28, 28, 1))
    x = inputs
    if spec.mlp_units:
        x = keras.layers.Flatten()(x)
        for width in spec.mlp_units:
            x = keras.layers.Dense(width, activation="relu")(x)
    else:
        for width in spec.cnn_filters:
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(spec.dense_units, activation="relu")(x)
    head = [keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES)]  # kplug's head starts with a Flatten
    if not nested:
        for layer in head:
            x = layer(x)
        return keras.Model(inputs, x)
    backbone = keras.Model(inputs, x, name="backbone")
    outer = keras.Input((28, 28, 1))
    return keras.Model(outer, keras.Sequential(head, name="label")(backbone(outer)))


def compile_plain(model, settings: dict[str, Any]) -> None:
    """Compile as kplug does for one classification head (Adam 1e-3, logits, accuracy)."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        **settings,
    )


def torch_model(spec: Spec):
    """The same network in torch.nn (NCHW)."""
    import torch

    layers: list[Any] = []
    if spec.mlp_units:
        layers.append(torch.nn.Flatten())
        width_in = 28 * 28
        for width in spec.mlp_units:
            layers += [torch.nn.Linear(width_in, width), torch.nn.ReLU()]
            width_in = width
    else:
        channels, size = 1, 28
        for width in spec.cnn_filters:
            layers += [torch.nn.Conv2d(channels, width, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
            channels, size = width, size // 2
        layers += [
            torch.nn.Flatten(),
            torch.nn.Linear(channels * size * size, spec.dense_units),
            torch.nn.ReLU(),
        ]
        width_in = spec.dense_units
    layers.append(torch.nn.Linear(width_in, NUM_CLASSES))
    return torch.nn.Sequential(*layers)
