"""``Head``: what sits on the backbone — layers, loss, metrics and decoding of outputs."""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np


class Head:
    """Base class of task heads. Subclass it and register the subclass as a head.

    A head owns the layers that turn backbone features into logits, its loss and
    metrics, the kind of target it learns and how logits become probabilities.

    Attributes:
        target_kind: ``"class"`` (integer class ids), ``"multi_label"`` (multi-hot
            rows) or ``"value"`` (real numbers). kplug prepares targets to match.
    """

    target_kind: ClassVar[str] = "class"
    # The metrics the run config chose for this head (``model.heads[].metrics``), set by kplug
    # when it builds the head; empty: the head reports ``metrics()``.
    chosen_metrics: tuple[Any, ...] = ()

    def __init__(self, dropout: float = 0.0) -> None:
        self.dropout = dropout

    def output_units(self) -> int:
        """Number of logits per example."""
        raise NotImplementedError

    def layer(self, name: str) -> keras.layers.Layer:
        """Return the head's layers as one named layer mapping features to logits.

        Logits are computed in float32 whatever the precision policy.
        """
        layers: list[keras.layers.Layer] = [keras.layers.Flatten()]
        if self.dropout:
            layers.append(keras.layers.Dropout(self.dropout))
        layers.append(keras.layers.Dense(self.output_units(), name="logits", dtype="float32"))
        return keras.Sequential(layers, name=name)

    def loss(self, label_smoothing: float = 0.0) -> Any:
        """The Keras loss for this head's logits."""
        raise NotImplementedError

    def metrics(self) -> list[Any]:
        """Keras metrics reported for this head."""
        return []

    def soft_loss(self, label_smoothing: float = 0.0) -> Any:
        """The loss for soft targets (one-hot class rows mixed by MixUp/CutMix); ``None``: unsupported."""
        return None

    def soft_metrics(self) -> list[Any]:
        """Metrics for soft targets (same names as ``metrics``)."""
        return self.metrics()

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Map logits to what ``predict`` reports as probabilities."""
        return logits

    def probability_ops(self, logits: Any) -> Any:
        """``probabilities`` on tensors (``keras.ops``): what configured metrics receive."""
        return logits

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Map probabilities to predicted label ids (or values)."""
        return probabilities
