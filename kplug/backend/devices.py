"""Devices each backend library sees, asked of the library itself (no Keras)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


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
        with _without_optional_imports():
            import tensorflow as tf

        return [device.name for device in tf.config.list_physical_devices()]
    if backend == "torch":
        return torch_devices()
    return []


# Optional imports inside ``import tensorflow``, each skipped on ImportError: Keras' optimizers
# (registered for SavedModel; Keras registers them itself whenever it is imported) and JAX (for
# TFLite conversion). Together more than half of TensorFlow's import time.
TENSORFLOW_OPTIONAL_IMPORTS = ("keras.src.optimizers", "jax")


@contextlib.contextmanager
def _without_optional_imports() -> Iterator[None]:
    """Let ``import tensorflow`` skip ``TENSORFLOW_OPTIONAL_IMPORTS`` when none of them is imported yet.

    Only for listing devices (``kplug doctor``); a later ``import keras`` or ``import jax`` works as usual.
    """
    if "tensorflow" in sys.modules or any(
        name.split(".")[0] in sys.modules for name in TENSORFLOW_OPTIONAL_IMPORTS
    ):
        yield
        return
    for name in TENSORFLOW_OPTIONAL_IMPORTS:
        sys.modules[name] = None  # type: ignore[assignment]  # makes that import fail fast
    try:
        yield
    finally:
        for name in TENSORFLOW_OPTIONAL_IMPORTS:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
