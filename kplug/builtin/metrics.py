"""Built-in metrics: every ``keras.metrics`` class by its Keras name, and a head-aware ``accuracy``.

A head reports these when its config lists them (``model.heads[].metrics``); the head's
probabilities reach them, with a classification head's class ids turned into rows of 0/1
for every metric but the ``sparse_*`` ones (see ``kplug.model.metrics``).
"""

from __future__ import annotations

import inspect
import re

import keras

from kplug.errors import ConfigError
from kplug.plugin.head import Head
from kplug.plugin.manager import hookimpl

# Base classes, generic reducers, the exact-match Accuracy (replaced by ``accuracy`` below) and
# the IoU family (segmentation: predicted class ids per pixel, not a head's probabilities).
LEFT_OUT = frozenset(
    {
        "Metric",
        "Mean",
        "Sum",
        "MeanMetricWrapper",
        "Accuracy",
        "BinaryIoU",
        "IoU",
        "MeanIoU",
        "OneHotIoU",
        "OneHotMeanIoU",
    }
)
# Short names Keras users write for these.
ALIASES = {"mae": "MeanAbsoluteError", "mse": "MeanSquaredError", "rmse": "RootMeanSquaredError"}


def keras_name(class_name: str) -> str:
    """``F1Score`` -> ``f1_score``, ``AUC`` -> ``auc``, ``FBetaScore`` -> ``fbeta_score``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()
    return snake.replace("f_beta", "fbeta")


def keras_metric_classes() -> dict[str, type]:
    """The ``keras.metrics`` classes a head can report, by registered name."""
    found = {}
    for attribute in dir(keras.metrics):
        value = getattr(keras.metrics, attribute)
        if inspect.isclass(value) and issubclass(value, keras.metrics.Metric) and attribute not in LEFT_OUT:
            found[keras_name(attribute)] = value
    return found


def accuracy(head: Head) -> keras.metrics.Metric:
    """The fraction of examples a head gets right: the top class, or each label at probability 0.5."""
    if head.target_kind == "class":
        return keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    if head.target_kind == "multi_label":
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.5)
    raise ConfigError(
        f"metric 'accuracy' applies to classification and multi-label heads, not to a "
        f"{type(head).__name__} (its targets are values); use mae, mse, rmse or r2_score."
    )


def _alias(class_name: str, alias: str):
    """A factory of ``keras.metrics.<class_name>`` named ``alias`` unless the options name it."""
    metric_class = getattr(keras.metrics, class_name)

    def factory(name: str = alias, dtype: str | None = None) -> keras.metrics.Metric:
        return metric_class(name=name, dtype=dtype)

    factory.__doc__ = f"keras.metrics.{class_name}, logged as {alias!r}."
    return factory


@hookimpl
def kplug_register_metrics(register):
    """Register ``accuracy``, every ``keras.metrics`` class and the aliases mae, mse and rmse."""
    register("accuracy", accuracy)
    for name, metric_class in sorted(keras_metric_classes().items()):
        register(name, metric_class, labels="ids" if name.startswith("sparse_") else "one_hot")
    for alias, class_name in ALIASES.items():
        register(alias, _alias(class_name, alias), labels="one_hot")
