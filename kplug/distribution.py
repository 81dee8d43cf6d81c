"""``Distribution``: where a model is built and trained (devices and strategy)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras


def list_devices() -> list[str]:
    """Devices visible to the active Keras backend."""
    backend = keras.backend.backend()
    try:
        return [str(device) for device in keras.distribution.list_devices()]
    except Exception:  # keras.distribution lists devices on jax only
        pass
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices()]
    if backend == "torch":
        import torch

        count = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(count)] or ["cpu:0"]
    return ["cpu:0"]


class Distribution:
    """Base class of distribution components: one device unless a subclass says otherwise."""

    name = "single-device"

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Context in which the model, optimizer and training run."""
        yield

    def describe(self) -> dict[str, Any]:
        """What ``report.json`` records about placement."""
        devices = list_devices()
        return {"strategy": self.name, "devices": devices[:1], "visible_devices": devices}
