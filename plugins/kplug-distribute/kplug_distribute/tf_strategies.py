"""TensorFlow: ``tf.distribute.MirroredStrategy`` around ``Model.fit`` (one host, several devices)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import kplug
from kplug.distribution import sharding_table


def split_cpu(count: int) -> list[str]:
    """Split the host CPU into ``count`` logical devices; possible only before TensorFlow starts.

    Logical CPUs run replicas one after another on the same cores: use them to check
    a setup on a laptop, not for speed.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration()] * count
    try:
        tf.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError:
        present = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(present) == count:
            return present
        raise kplug.ConfigError(
            f"distribution.options.cpu_devices = {count}: TensorFlow has already started with "
            f"{len(present)} CPU device(s), and logical devices can only be set before it runs anything. "
            f"Set it in a fresh process (kplug train does)."
        ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


class Mirrored(kplug.Distribution):
    """Replicate the model on every GPU of this host and split each batch between them (TensorFlow).

    Args:
        devices: device names to use (default: every GPU TensorFlow sees).
        cpu_devices: split the CPU into this many logical devices and mirror over
            them instead (a correctness check without GPUs; no speed-up).
    """

    name = "mirrored"
    even_last_batch = False  # tf.distribute hands a smaller last batch to fewer replicas

    def __init__(self, devices: list[str] | None = None, cpu_devices: int = 0) -> None:
        import tensorflow as tf

        if cpu_devices:
            devices = split_cpu(cpu_devices)
        elif not devices:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(devices) < 2:
            found = [d.name for d in tf.config.list_logical_devices()]
            raise kplug.ConfigError(
                f"distribution.name = 'mirrored': {len(devices)} GPU(s) found ({', '.join(found)}), so "
                f"nothing would run in parallel. Use 'single-device' or 'auto' (or cpu_devices: N to "
                f"check the setup on CPU)."
            )
        self.devices = list(devices)
        self._strategy = tf.distribute.MirroredStrategy(self.devices)
        self.replicas = self._strategy.num_replicas_in_sync

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with self._strategy.scope():
            yield

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        import tensorflow as tf

        placement = {
            "strategy": self.name,
            "replicas": self.replicas,
            "processes": 1,
            "devices": self.devices,
            "visible_devices": [d.name for d in tf.config.list_logical_devices()],
        }
        if model is not None:
            placement["variables"] = {
                path: "mirrored"
                if "Mirrored" in type(v).__name__ or "Mirrored" in str(type(v.value))
                else spec
                for (path, spec), v in zip(sharding_table(model).items(), model.weights, strict=True)
            }
        return placement


def offer_mirrored() -> kplug.Distribution | None:
    """``auto`` on TensorFlow: mirror over the GPUs when there are several."""
    import tensorflow as tf

    if len(tf.config.list_logical_devices("GPU")) < 2:
        return None
    return Mirrored()
