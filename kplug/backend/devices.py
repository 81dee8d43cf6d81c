"""Devices each backend library sees, asked of the library itself (no Keras)."""

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


def jax_devices() -> list[str]:
    """JAX's devices as ``platform:id`` (``keras.distribution.list_devices`` names them so)."""
    import jax

    return [f"{device.platform}:{device.id}" for device in jax.devices()]


def backend_devices(backend: str) -> list[str]:
    """The devices ``backend``'s library sees, without importing Keras (``kplug doctor``).

    TensorFlow lists its physical devices, which does not start its runtime.
    """
    if backend == "jax":
        return jax_devices()
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_physical_devices()]
    if backend == "torch":
        return torch_devices()
    return []
