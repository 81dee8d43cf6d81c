"""Pixel arrays as backbones take them: ``uint8`` pixels scaled to [0, 1], a channel axis on (N, H, W)."""

from __future__ import annotations

import numpy as np


def as_model_pixels(features: np.ndarray, scale: bool = True) -> np.ndarray:
    """``features`` ready for a model when they are ``uint8`` pixels; any other array unchanged.

    ``uint8`` is how images are stored (``keras.datasets``, PIL, IDX files), never how a model
    takes them: (N, H, W) gets a channel axis (N, H, W, 1), and with ``scale`` the values
    become float32 in [0, 1] (``x / 255``), so no run trains on raw 0-255 inputs by accident.

    Example::

        as_model_pixels(np.zeros((2, 28, 28), "uint8")).shape   # (2, 28, 28, 1), float32
    """
    if features.dtype != np.uint8:
        return features
    if features.ndim == 3:
        features = features[..., None]
    return features.astype("float32") / 255.0 if scale else features
