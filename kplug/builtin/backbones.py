"""Built-in backbones: an MLP and a small CNN, both small enough to train on a CPU in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import keras

from kplug.config.schema import PYTHON_BACKBONE
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


def keras_model(model: Any, input_shape: tuple[int, ...]) -> keras.layers.Layer:
    """A Keras model (or keras-hub Backbone) object given from Python as ``model.backbone``.

    kplug trains a copy (``keras.models.clone_model`` with the object's weights) so a second
    run from the same object starts from the same weights; a model that cannot be cloned is
    used itself. The run directory keeps it as ``backbone.keras`` (see ``keras-file``).
    """
    if not isinstance(model, keras.layers.Layer):
        raise ConfigError(
            f"model.backbone.options.model: expected a keras.Model object, got {type(model).__name__}."
        )
    expected = getattr(model, "input_shape", None)
    if isinstance(expected, tuple) and len(expected) == len(input_shape) + 1:
        if any(e is not None and e != got for e, got in zip(expected[1:], input_shape, strict=True)):
            raise ConfigError(
                f"model.backbone: the Keras model {model.name!r} takes inputs of shape {expected[1:]}, "
                f"but each example of the data has shape {tuple(input_shape)}."
            )
    try:
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    except Exception:  # a subclassed model without get_config: train the object itself
        return model
    return copy


def keras_file(path: str, input_shape: tuple[int, ...]) -> keras.layers.Layer:
    """A Keras model saved as a ``.keras`` file (loaded without running code), used as the backbone."""
    from kplug.model.checkpoint_init import load_model_file

    return keras_model(load_model_file(Path(path)), input_shape)


@hookimpl
def kplug_register_backbones(register):
    """Register the built-in backbones."""
    register("mlp", mlp)
    register("small-cnn", small_cnn)
    register(PYTHON_BACKBONE, keras_model)
    register("keras-file", keras_file)
