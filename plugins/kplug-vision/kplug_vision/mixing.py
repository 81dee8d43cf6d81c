"""MixUp and CutMix: batch augmentations that mix pairs of images and their labels.

They are registered with ``batch=True``: kplug calls the returned
``transform(x, y, rng)`` on every training batch in its input pipeline (never for
evaluation or prediction), with ``y`` the one-hot (soft) labels, float32
``[batch, classes]`` for a classification head (or a dict of such arrays by head id).
Both are plain NumPy, so they run the same whatever the Keras backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
import pydantic
from kplug.plugin import DataError

Probability = Annotated[float, pydantic.Field(ge=0.0, le=1.0)]
Concentration = Annotated[float, pydantic.Field(gt=0.0)]
Labels = Any  # an array [batch, ...] or a dict of them by head id
BatchTransform = Callable[[np.ndarray, Labels, np.random.Generator], tuple[np.ndarray, Labels]]


def _mix_labels(y: Labels, weight: np.ndarray, partner: np.ndarray) -> Labels:
    """``weight * y + (1 - weight) * y[partner]`` per example, for an array or a dict of arrays."""
    if isinstance(y, dict):
        return {name: _mix_labels(values, weight, partner) for name, values in y.items()}
    labels = np.asarray(y, dtype="float32")
    w = weight.reshape((-1,) + (1,) * (labels.ndim - 1)).astype("float32")
    return w * labels + (1.0 - w) * labels[partner]


def _sample_weights(rng: np.random.Generator, batch: int, alpha: float, probability: float) -> np.ndarray:
    """Per-example share of the example's own content: Beta(alpha, alpha), or 1 when not mixed."""
    weight = rng.beta(alpha, alpha, size=batch)
    mixed = rng.random(batch) < probability
    return np.where(mixed, weight, 1.0)


def make_mixup(alpha: Concentration = 0.2, probability: Probability = 1.0) -> BatchTransform:
    """MixUp (Zhang et al., 2018): each image blended with another of the batch, labels alike.

    Args:
        alpha: the Beta(alpha, alpha) distribution of the blend weight; small values
            keep most images close to one of the pair.
        probability: share of the examples of a batch that are mixed.

    Returns:
        ``transform(x, y, rng) -> (x, y)`` for kplug's input pipeline.
    """

    def mixup(x: np.ndarray, y: Labels, rng: np.random.Generator) -> tuple[np.ndarray, Labels]:
        batch = len(x)
        weight = _sample_weights(rng, batch, alpha, probability)
        partner = rng.permutation(batch)
        images = np.asarray(x, dtype="float32")
        w = weight.reshape((-1,) + (1,) * (images.ndim - 1)).astype("float32")
        return w * images + (1.0 - w) * images[partner], _mix_labels(y, weight, partner)

    return mixup


def make_cutmix(alpha: Concentration = 1.0, probability: Probability = 1.0) -> BatchTransform:
    """CutMix (Yun et al., 2019): a rectangle of each image replaced by the same rectangle of another.

    Labels are mixed by the exact share of pixels each image keeps.

    Args:
        alpha: the Beta(alpha, alpha) distribution of the kept area.
        probability: share of the examples of a batch that are mixed.

    Returns:
        ``transform(x, y, rng) -> (x, y)`` for kplug's input pipeline.
    """

    def cutmix(x: np.ndarray, y: Labels, rng: np.random.Generator) -> tuple[np.ndarray, Labels]:
        images = np.array(x, dtype="float32")  # a copy: rectangles are pasted in place
        if images.ndim < 3:
            raise DataError(
                f"augment: cutmix needs images of shape (height, width[, channels]); the batch has shape "
                f"{images.shape}."
            )
        batch, height, width = images.shape[:3]
        kept = _sample_weights(rng, batch, alpha, probability)
        partner = rng.permutation(batch)
        source = images.copy()
        share = np.ones(batch)
        for i in np.flatnonzero(kept < 1.0):
            cut = np.sqrt(1.0 - kept[i])
            cut_h, cut_w = int(round(height * cut)), int(round(width * cut))
            cy, cx = rng.integers(height), rng.integers(width)
            top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, height)
            left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, width)
            images[i, top:bottom, left:right] = source[partner[i], top:bottom, left:right]
            share[i] = 1.0 - (bottom - top) * (right - left) / (height * width)
        return images, _mix_labels(y, share, partner)

    return cutmix


BATCH_AUGMENTATIONS = {"mixup": make_mixup, "cutmix": make_cutmix}
