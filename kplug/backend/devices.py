"""Devices the tensorflow and torch backends see (``keras.distribution`` lists them on jax only)."""

from __future__ import annotations


def tensorflow_devices() -> list[str]:
    """TensorFlow's logical devices, e.g. ``["/device:CPU:0"]``."""
    import tensorflow as tf

    return [device.name for device in tf.config.list_logical_devices()]


def torch_devices() -> list[str]:
    """The CUDA devices torch sees, or ``["cpu:0"]`` when there are none."""
    import torch

    count = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(count)] or ["cpu:0"]
