"""The metrics a head reports: its defaults, or the ones its config lists (``model.heads[].metrics``).

A head's model output is logits. A configured metric measures what a user means by the
metric's name: it receives the head's probabilities (``Head.probability_ops``) and, for a
classification head, the targets as the metric's registration asks (class ids, or rows of
0/1 for Keras metrics such as ``auc``, ``precision`` or ``f1_score``).
"""

from __future__ import annotations

from typing import Any

import keras

from kplug.errors import PluginError
from kplug.plugin.head import Head
from kplug.plugin.options import factory_parameters
from kplug.plugin.resolve import Chosen


class WrappedMetric(keras.metrics.Metric):
    """A metric that measures through ``inner``: its result, reset and config are ``inner``'s."""

    def __init__(self, inner: keras.metrics.Metric, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name=name or inner.name, dtype=inner.dtype, **kwargs)
        self.inner = inner

    def result(self) -> Any:
        return self.inner.result()

    def reset_state(self) -> None:
        self.inner.reset_state()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype}


class HeadMetric(WrappedMetric):
    """``inner`` measured on a head's probabilities, with a classification head's targets as it asks.

    Args:
        inner: the metric.
        head: the head whose logits arrive.
        one_hot: give ``inner`` rows of 0/1 rather than class ids (classification heads only).
        name: the name Keras logs (default: ``inner``'s).
    """

    def __init__(
        self, inner: keras.metrics.Metric, head: Head, one_hot: bool, name: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(inner, name, **kwargs)
        self.head = head
        self.one_hot = one_hot
        self.classes = head.output_units() if head.target_kind == "class" else 0

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        y_pred = self.head.probability_ops(y_pred)
        if self.classes:
            # class ids, or one-hot (possibly mixed, under MixUp/CutMix) rows
            rows = len(y_true.shape) == 2 and y_true.shape[-1] == self.classes and self.classes > 1
            if self.one_hot and not rows:
                ids = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
                y_true = keras.ops.one_hot(ids, self.classes)
            elif not self.one_hot and rows:
                y_true = keras.ops.argmax(y_true, axis=-1)
        return self.inner.update_state(y_true, y_pred, sample_weight=sample_weight)


class RealRows(WrappedMetric):
    """``inner`` over the rows whose sample weight is not 0: the padding of a batch split over replicas.

    Compiled as a weighted metric, it sees the batch's sample weights but measures every real
    row equally, as an unweighted metric would (``kplug.data.padding``).
    """

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        if sample_weight is not None:
            sample_weight = keras.ops.cast(keras.ops.greater(sample_weight, 0), self.inner.dtype)
        return self.inner.update_state(y_true, y_pred, sample_weight=sample_weight)


def logged_name(chosen: Chosen) -> str:
    """The name the config gives a metric in its options, else its registered name (never ``auc_2``)."""
    given = chosen.options.get("name")
    parameter = factory_parameters(chosen.component.factory).get("name")
    default = None if parameter is None else parameter.default
    return given if given is not None and given != default else chosen.component.name


def head_metrics(head: Head, soft: bool = False) -> list[Any]:
    """Fresh metrics for ``head``: the configured ones, else its own (``soft``: for mixed targets).

    Raises:
        PluginError: a registered metric factory returned something other than a Keras metric.
        ConfigError: a metric that cannot measure this head (raised by its factory).
    """
    if not head.chosen_metrics:
        return head.soft_metrics() if soft else head.metrics()
    metrics = []
    for chosen in head.chosen_metrics:
        metric = chosen.build(head=head)
        if not isinstance(metric, keras.metrics.Metric):
            raise PluginError(
                f"metric '{chosen.component.name}' ({chosen.component.provider}) returned "
                f"{type(metric).__name__}; a metric factory must return a keras.metrics.Metric."
            )
        one_hot = chosen.component.extra("labels") == "one_hot"
        metrics.append(HeadMetric(metric, head, one_hot, logged_name(chosen)))
    return metrics
