"""Built-in backbones: an MLP and a small CNN, both small enough to train on a CPU in seconds."""

from __future__ import annotations

from typing import Literal

import keras

from kplug.errors import ConfigError
from kplug.plugin.manager import hookimpl


def mlp(
    input_shape: tuple[int, ...],
    units: list[int] | int = 128,
    dropout: float = 0.0,
    activation: str = "relu",
) -> keras.Model:
    """A multilayer perceptron over flattened inputs."""
    widths = [units] if isinstance(units, int) else list(units)
    inputs = keras.Input(input_shape, name="features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for depth, width in enumerate(widths, start=1):
        x = keras.layers.Dense(width, activation=activation, name=f"dense{depth}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout{depth}")(x)
    return keras.Model(inputs, x, name="mlp")


def small_cnn(
    input_shape: tuple[int, ...],
    filters: list[int] | None = None,
    dense_units: int = 64,
    dropout: float = 0.0,
    pooling: Literal["flatten", "average"] = "flatten",
    batch_norm: bool = False,
) -> keras.Model:
    """A small convolutional network for images (e.g. 28x28 digits): conv blocks, then a dense embedding.

    With ``batch_norm`` each convolution is followed by BatchNormalization (``bn<block>``).
    """
    if len(input_shape) != 3:
        raise ConfigError(
            f"model.backbone: small-cnn takes images of shape (height, width, channels), but each example "
            f"has shape {tuple(input_shape)}. Add a channel axis to grey images (x[..., None]; uint8 pixel "
            f"arrays get one automatically), or use the mlp backbone for flat vectors."
        )
    inputs = keras.Input(input_shape, name="images")
    x = inputs
    for block, width in enumerate(filters or [16, 32], start=1):
        if batch_norm:
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{block}")(x)
            x = keras.layers.Activation("relu", name=f"relu{block}")(x)
        else:
            x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    if pooling == "average":
        x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="embedding")(x)
    return keras.Model(inputs, x, name="small_cnn")


@hookimpl
def kplug_register_backbones(register):
    """Register the built-in backbones."""
    register("mlp", mlp)
    register("small-cnn", small_cnn)
