"""The devices a run can be placed on, for the active Keras backend."""

from __future__ import annotations

import keras

from kplug.backend.devices import tensorflow_devices, torch_devices


def list_devices() -> list[str]:
    """Devices visible to the active Keras backend."""
    backend = keras.backend.backend()
    try:
        return [str(device) for device in keras.distribution.list_devices()]
    except Exception:  # keras.distribution lists devices on jax only
        pass
    if backend == "tensorflow":
        return tensorflow_devices()
    if backend == "torch":
        return torch_devices()
    return ["cpu:0"]
