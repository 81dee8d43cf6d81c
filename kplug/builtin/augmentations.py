"""Built-in augmentation: Gaussian input noise (active only while training)."""

from __future__ import annotations

import keras

from kplug.plugin.manager import hookimpl


def gaussian_noise(stddev: float = 0.1) -> keras.layers.Layer:
    """Add zero-mean Gaussian noise to the inputs during training."""
    return keras.layers.GaussianNoise(stddev, name="gaussian_noise")


@hookimpl
def kplug_register_augmentations(register):
    """Register the built-in augmentations."""
    register("gaussian-noise", gaussian_noise)
