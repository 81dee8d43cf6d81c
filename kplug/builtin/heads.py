"""Built-in heads: single-label classification, multi-label classification and regression."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from pydantic import PositiveInt

from kplug.plugin.head import Head
from kplug.plugin.manager import hookimpl


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


@keras.saving.register_keras_serializable(package="kplug")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras' sparse loss has none)."""

    def __init__(self, num_classes: int, label_smoothing: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        labels = keras.ops.one_hot(
            keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), self.num_classes
        )
        return keras.losses.categorical_crossentropy(
            labels, y_pred, from_logits=True, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
        }


class ClassificationHead(Head):
    """One class per example: softmax over ``num_classes`` logits (inferred from the data if unset)."""

    target_kind = "class"

    def __init__(self, num_classes: PositiveInt | None = None, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        self.num_classes = num_classes

    def output_units(self) -> int:
        return int(self.num_classes)

    def loss(self, label_smoothing: float = 0.0) -> Any:
        if label_smoothing:
            return SmoothedSparseCrossentropy(self.output_units(), label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self) -> list[Any]:
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def soft_loss(self, label_smoothing: float = 0.0) -> Any:
        return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)

    def soft_metrics(self) -> list[Any]:
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return _softmax(logits)

    def probability_ops(self, logits: Any) -> Any:
        return keras.ops.softmax(logits, axis=-1)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return probabilities.argmax(axis=-1)


class MultiLabelHead(Head):
    """Any number of labels per example: an independent sigmoid per label."""

    target_kind = "multi_label"

    def __init__(
        self, num_classes: PositiveInt | None = None, dropout: float = 0.0, threshold: float = 0.5
    ) -> None:
        super().__init__(dropout)
        self.num_classes = num_classes
        self.threshold = threshold

    def output_units(self) -> int:
        return int(self.num_classes)

    def loss(self, label_smoothing: float = 0.0) -> Any:
        return keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=label_smoothing)

    def soft_loss(self, label_smoothing: float = 0.0) -> Any:
        return self.loss(label_smoothing)

    def metrics(self) -> list[Any]:
        # logit > 0 is probability > 0.5
        return [keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=0.0)]

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return _sigmoid(logits)

    def probability_ops(self, logits: Any) -> Any:
        return keras.ops.sigmoid(logits)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        return (probabilities >= self.threshold).astype("int32")


class RegressionHead(Head):
    """Real-valued targets with mean squared error."""

    target_kind = "value"

    def __init__(self, num_outputs: PositiveInt = 1, dropout: float = 0.0) -> None:
        super().__init__(dropout)
        self.num_outputs = num_outputs

    def output_units(self) -> int:
        return self.num_outputs

    def loss(self, label_smoothing: float = 0.0) -> Any:
        return keras.losses.MeanSquaredError()

    def soft_loss(self, label_smoothing: float = 0.0) -> Any:
        return self.loss(label_smoothing)

    def metrics(self) -> list[Any]:
        return [keras.metrics.MeanAbsoluteError(name="mae")]


@hookimpl
def kplug_register_heads(register):
    """Register the built-in heads."""
    register("classification", ClassificationHead)
    register("multi-label", MultiLabelHead)
    register("regression", RegressionHead)
