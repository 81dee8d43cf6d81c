"""ImageNet-style preprocessing attached in front of a backbone network.

Every vision backbone of this package is one ``keras.Model``: the data's images go in
(any size, 1 or 3 channels, pixel values in ``[0, input_max]``), and it adds a channel
axis when there is none, repeats a grey channel to RGB when the network wants three,
resizes to the network's image size and normalises the way the network's weights
expect, before the network and its pooling. Only stock Keras layers and the small
serializable layers below are used, so a saved run loads without running code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import keras
from kplug.plugin import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Normalization = Literal["imagenet", "inception", "unit", "bytes", "none"]
"""How pixels are scaled for the network.

``imagenet``: ``(x - mean) / std`` per channel on ``[0, 1]`` (ResNet, ConvNeXt, DenseNet);
``inception``: ``[-1, 1]`` (MobileNet, ViT); ``unit``: ``[0, 1]``; ``bytes``: ``[0, 255]``
(networks that normalise inside themselves, like keras.applications EfficientNet);
``none``: unchanged.
"""


@keras.saving.register_keras_serializable(package="kplug_vision")
class SelectToken(keras.layers.Layer):
    """Pick one token of a ``[batch, tokens, features]`` sequence (a ViT's class token)."""

    def __init__(self, index: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.index = index

    def call(self, inputs):
        return inputs[:, self.index, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self) -> dict:
        return {**super().get_config(), "index": self.index}


@dataclass(frozen=True)
class Scaling:
    """``x * scale + offset`` per channel, applied to pixels in ``[0, input_max]``."""

    scale: float | tuple[float, ...]
    offset: float | tuple[float, ...]


def scaling(normalization: Normalization, input_max: float) -> Scaling | None:
    """The per-channel affine map that turns ``[0, input_max]`` pixels into ``normalization``."""
    if input_max <= 0:
        raise ConfigError(f"input_max = {input_max}: the value of a white pixel must be positive.")
    if normalization == "imagenet":
        return Scaling(
            tuple(1.0 / (input_max * s) for s in IMAGENET_STD),
            tuple(-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
        )
    if normalization == "inception":
        return Scaling(2.0 / input_max, -1.0)
    if normalization == "unit":
        return None if input_max == 1.0 else Scaling(1.0 / input_max, 0.0)
    if normalization == "bytes":
        return None if input_max == 255.0 else Scaling(255.0 / input_max, 0.0)
    if normalization == "none":
        return None
    raise ConfigError(f"normalization = {normalization!r}: choose imagenet, inception, unit, bytes or none.")


def image_size_pair(image_size: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``224`` or ``[224, 224]`` as ``(height, width)``; ``None`` stays ``None``."""
    if image_size is None:
        return None
    pair = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(pair) != 2 or any(int(side) < 1 for side in pair):
        raise ConfigError(f"image_size = {image_size!r}: give one positive size or [height, width].")
    return int(pair[0]), int(pair[1])


def data_image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """The ``(height, width, channels)`` of the data's images (a missing channel axis is 1)."""
    shape = tuple(input_shape)
    if len(shape) == 2:
        return (shape[0], shape[1], 1)
    if len(shape) == 3 and shape[-1] in (1, 3):
        return shape  # type: ignore[return-value]
    raise DataError(
        f"A vision backbone takes images of shape (height, width) or (height, width, 1 or 3 channels); "
        f"the data's examples have shape {shape}."
    )


def preprocess(
    inputs: keras.KerasTensor,
    channels: int,
    image_size: tuple[int, int] | None,
    normalization: Scaling | None,
) -> keras.KerasTensor:
    """Channel axis, grey-to-RGB, resize and normalisation layers applied to ``inputs``."""
    x = inputs
    if len(x.shape) == 3:
        x = keras.layers.Reshape((*x.shape[1:], 1), name="add_channel")(x)
    if x.shape[-1] == 1 and channels == 3:
        x = keras.layers.Concatenate(axis=-1, name="to_rgb")([x, x, x])
    elif x.shape[-1] != channels:
        raise DataError(
            f"The backbone network takes {channels}-channel images; the data's images have "
            f"{x.shape[-1]} channels."
        )
    if image_size is not None and tuple(x.shape[1:3]) != image_size:
        x = keras.layers.Resizing(*image_size, interpolation="bilinear", name="resize")(x)
    if normalization is not None:
        x = keras.layers.Rescaling(normalization.scale, normalization.offset, name="normalize")(x)
    return x


def pooled(x: keras.KerasTensor, pooling: str) -> keras.KerasTensor:
    """Feature maps or token sequences pooled to one feature vector per image."""
    if len(x.shape) == 4:
        if pooling == "max":
            return keras.layers.GlobalMaxPooling2D(name="pool")(x)
        return keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if len(x.shape) == 3:
        if pooling == "token":
            return SelectToken(0, name="pool")(x)
        return keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return x


def attach(
    network: keras.layers.Layer,
    input_shape: Sequence[int],
    *,
    channels: int,
    image_size: tuple[int, int] | None,
    normalization: Scaling | None,
    pooling: str,
    name: str,
) -> keras.Model:
    """One model: the data's images -> preprocessing -> ``network`` -> pooled features."""
    data_image_shape(input_shape)
    inputs = keras.Input(tuple(input_shape), name="images")
    x = preprocess(inputs, channels, image_size, normalization)
    features = pooled(network(x), pooling)
    return keras.Model(inputs, features, name=name)
