"""Image augmentations as kplug components: Keras' random preprocessing layers, each with a
per-image ``probability``, plus a random resized crop.

The run's ``augment`` list is the ordered pipeline: kplug puts these layers, in that
order, between the model input and the backbone. They change images only when called
with ``training=True`` (``Model.fit``), never in ``evaluate`` or ``predict``, and run on
every backend because they are part of the model. Images are the data's own (pixel
values in ``value_range``, default ``[0, 1]`` as kplug's image readers give them); the
backbone's preprocessing comes after them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import keras
import pydantic

Probability = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
Fraction = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
ValueRange = tuple[float, float]
FillMode = Literal["reflect", "wrap", "constant", "nearest"]


@keras.saving.register_keras_serializable(package="kplug_vision")
class RandomApply(keras.layers.Layer):
    """Apply ``layer`` to each image with probability ``probability``; other images pass unchanged.

    Args:
        layer: a Keras layer that changes images only when ``training=True``.
        probability: chance that an image of the batch gets the augmented version.
        seed: seed of the per-image draws.
    """

    def __init__(
        self, layer: keras.layers.Layer, probability: float = 0.5, seed: int | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.layer = layer
        self.probability = probability
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.layer.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        if not training:
            return inputs
        augmented = self.layer(inputs, training=True)
        batch = keras.ops.shape(inputs)[0]
        draws = keras.random.uniform((batch,), seed=self.generator)
        chosen = keras.ops.cast(draws < self.probability, inputs.dtype)
        chosen = keras.ops.reshape(chosen, (-1,) + (1,) * (len(inputs.shape) - 1))
        return chosen * keras.ops.cast(augmented, inputs.dtype) + (1.0 - chosen) * inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "layer": keras.saving.serialize_keras_object(self.layer),
            "probability": self.probability,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: dict) -> RandomApply:
        config = dict(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kplug_vision")
class RandomResizedCrop(keras.layers.Layer):
    """Crop a random square-proportioned window of each image and resize it back to the image size.

    Each image gets its own window: its sides are a fraction in ``scale`` of the image's
    sides and it lies anywhere inside the image. Only while training; otherwise identity.

    Args:
        scale: range of the window's side as a fraction of the image's side.
        interpolation: ``bilinear`` or ``nearest``.
        seed: seed of the random windows.
    """

    def __init__(
        self,
        scale: tuple[float, float] = (0.6, 1.0),
        interpolation: str = "bilinear",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        low, high = float(scale[0]), float(scale[1])
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale = {list(scale)}: expected 0 < low <= high <= 1.")
        self.scale = (low, high)
        self.interpolation = interpolation
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training:
            return inputs
        images = inputs if len(inputs.shape) == 4 else keras.ops.expand_dims(inputs, 0)
        shape = keras.ops.shape(images)
        batch = shape[0]
        height = keras.ops.cast(shape[1], "float32")
        width = keras.ops.cast(shape[2], "float32")
        low, high = self.scale
        side = keras.random.uniform((batch,), low, high, seed=self.generator)
        top = keras.random.uniform((batch,), seed=self.generator) * (1.0 - side) * (height - 1.0)
        left = keras.random.uniform((batch,), seed=self.generator) * (1.0 - side) * (width - 1.0)
        zeros = keras.ops.zeros_like(side)
        # output pixel (x, y) reads input pixel (side * x + left, side * y + top)
        transform = keras.ops.stack([side, zeros, left, zeros, side, top, zeros, zeros], axis=1)
        cropped = keras.ops.image.affine_transform(
            keras.ops.cast(images, "float32"),
            transform,
            interpolation=self.interpolation,
            fill_mode="nearest",
        )
        cropped = keras.ops.cast(cropped, inputs.dtype)
        return cropped if len(inputs.shape) == 4 else cropped[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "scale": list(self.scale),
            "interpolation": self.interpolation,
            "seed": self.seed,
        }


def with_probability(layer: keras.layers.Layer, probability: float, name: str) -> keras.layers.Layer:
    """``layer`` itself when ``probability`` is 1, else wrapped to reach only that share of images."""
    if probability >= 1.0:
        return layer
    return RandomApply(layer, probability, name=f"{name}_p")


def flip(
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal",
    probability: Probability = 1.0,
) -> keras.layers.Layer:
    """Random horizontal and/or vertical flips (keras.layers.RandomFlip).

    Args:
        mode: which flips.
        probability: share of images that may be flipped (each flip then happens half the time).
    """
    return with_probability(keras.layers.RandomFlip(mode, name="flip"), probability, "flip")


def rotation(
    factor: Fraction = 0.1, fill_mode: FillMode = "reflect", probability: Probability = 1.0
) -> keras.layers.Layer:
    """Random rotations by up to ``factor`` of a full turn either way (keras.layers.RandomRotation).

    Args:
        factor: largest rotation as a fraction of 2*pi (0.1 = 36 degrees).
        fill_mode: how pixels outside the image are filled.
        probability: share of images rotated.
    """
    layer = keras.layers.RandomRotation(factor, fill_mode=fill_mode, name="rotation")
    return with_probability(layer, probability, "rotation")


def zoom(
    factor: Fraction = 0.2, fill_mode: FillMode = "reflect", probability: Probability = 1.0
) -> keras.layers.Layer:
    """Random zoom in or out by up to ``factor`` about the centre (keras.layers.RandomZoom).

    Args:
        factor: largest zoom as a fraction of the image side (0.2 = 80% to 120%).
        fill_mode: how pixels outside the image are filled when zooming out.
        probability: share of images zoomed.
    """
    layer = keras.layers.RandomZoom(factor, fill_mode=fill_mode, name="zoom")
    return with_probability(layer, probability, "zoom")


def crop(scale: tuple[Fraction, Fraction] = (0.6, 1.0), probability: Probability = 1.0) -> keras.layers.Layer:
    """Random resized crops: a random window of each image, resized back to the image size.

    Args:
        scale: range of the window's side as a fraction of the image's side.
        probability: share of images cropped.
    """
    return with_probability(RandomResizedCrop(tuple(scale), name="crop"), probability, "crop")


def translation(
    factor: Fraction = 0.1, fill_mode: FillMode = "reflect", probability: Probability = 1.0
) -> keras.layers.Layer:
    """Random shifts by up to ``factor`` of the image size (keras.layers.RandomTranslation).

    Args:
        factor: largest shift as a fraction of height and width.
        fill_mode: how pixels shifted in are filled.
        probability: share of images shifted.
    """
    layer = keras.layers.RandomTranslation(factor, factor, fill_mode=fill_mode, name="translation")
    return with_probability(layer, probability, "translation")


def contrast(
    factor: Fraction = 0.2, value_range: ValueRange = (0.0, 1.0), probability: Probability = 1.0
) -> keras.layers.Layer:
    """Random contrast changes by up to ``factor`` (keras.layers.RandomContrast).

    Args:
        factor: largest change of contrast (0.2 = 80% to 120%).
        value_range: the data's pixel range.
        probability: share of images changed.
    """
    layer = keras.layers.RandomContrast(factor, value_range=tuple(value_range), name="contrast")
    return with_probability(layer, probability, "contrast")


def color_jitter(
    brightness: Fraction = 0.2,
    contrast: Fraction = 0.2,
    saturation: Fraction = 0.0,
    hue: Fraction = 0.0,
    value_range: ValueRange = (0.0, 1.0),
    probability: Probability = 1.0,
) -> keras.layers.Layer:
    """Random brightness, contrast, saturation and hue (keras.layers.RandomColorJitter).

    Saturation and hue need RGB images; leave them at 0 for greyscale data.

    Args:
        brightness: largest brightness change as a fraction of the value range.
        contrast: largest contrast change.
        saturation: largest saturation change (RGB only).
        hue: largest hue shift (RGB only).
        value_range: the data's pixel range.
        probability: share of images changed.
    """
    layer = keras.layers.RandomColorJitter(
        value_range=tuple(value_range),
        brightness_factor=brightness or None,
        contrast_factor=contrast or None,
        saturation_factor=(0.5 - saturation / 2, 0.5 + saturation / 2) if saturation else None,
        hue_factor=hue or None,
        name="color_jitter",
    )
    return with_probability(layer, probability, "color_jitter")


def erasing(
    scale: tuple[Fraction, Fraction] = (0.02, 0.2),
    value_range: ValueRange = (0.0, 1.0),
    probability: Probability = 0.5,
) -> keras.layers.Layer:
    """Random erasing: a random rectangle of each chosen image filled with noise (keras.layers.RandomErasing).

    Args:
        scale: range of the erased area as a fraction of the image area.
        value_range: the data's pixel range.
        probability: share of images erased.
    """
    # RandomErasing's factor (p, p) erases each image with probability p
    return keras.layers.RandomErasing(
        factor=(probability, probability), scale=tuple(scale), value_range=tuple(value_range), name="erasing"
    )


def randaugment(
    num_ops: Annotated[int, pydantic.Field(ge=1)] = 2,
    factor: Fraction = 0.5,
    value_range: ValueRange = (0.0, 1.0),
    probability: Probability = 1.0,
) -> keras.layers.Layer:
    """RandAugment: ``num_ops`` random operations of strength ``factor`` per image (keras.layers.RandAugment).

    Args:
        num_ops: operations applied in sequence to each image.
        factor: strength of the operations, 0 to 1.
        value_range: the data's pixel range.
        probability: share of images augmented.
    """
    layer = keras.layers.RandAugment(
        value_range=tuple(value_range), num_ops=num_ops, factor=factor, name="randaugment"
    )
    return with_probability(layer, probability, "randaugment")


AUGMENTATIONS = {
    "flip": flip,
    "rotation": rotation,
    "zoom": zoom,
    "crop": crop,
    "translation": translation,
    "contrast": contrast,
    "color-jitter": color_jitter,
    "erasing": erasing,
    "randaugment": randaugment,
}
