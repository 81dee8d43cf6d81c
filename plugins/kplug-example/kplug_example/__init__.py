"""kplug-example: a minimal kplug plugin with one backbone and one callback.

Installed, it is found through the ``kplug`` entry-point group (see
``pyproject.toml``); configs then name its components: ``tiny-mlp`` and
``print-epoch``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import kplug

if TYPE_CHECKING:
    from kplug.plugin import Register


def tiny_mlp(input_shape: tuple[int, ...], units: int = 64) -> keras.Model:
    """A one-layer MLP backbone: flattened inputs to ``units`` ReLU features.

    Args:
        input_shape: shape of one example without the batch axis (supplied by kplug).
        units: width of the hidden layer.

    Returns:
        A ``keras.Model`` mapping inputs to features; kplug puts the heads on top.
    """
    inputs = keras.Input(input_shape, name="features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(units, activation="relu", name="hidden")(x)
    return keras.Model(inputs, x, name="tiny_mlp")


class PrintEpoch(keras.callbacks.Callback):
    """Print one line per epoch with its logs.

    Args:
        prefix: text at the start of every line.
    """

    def __init__(self, prefix: str = "epoch") -> None:
        super().__init__()
        self.prefix = prefix

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = " ".join(f"{name}={float(value):.4f}" for name, value in sorted((logs or {}).items()))
        print(f"{self.prefix} {epoch + 1}: {values}", flush=True)


@kplug.hookimpl
def kplug_register_backbones(register: Register) -> None:
    """Register the ``tiny-mlp`` backbone."""
    register("tiny-mlp", tiny_mlp)


@kplug.hookimpl
def kplug_register_callbacks(register: Register) -> None:
    """Register the ``print-epoch`` callback."""
    register("print-epoch", PrintEpoch)
