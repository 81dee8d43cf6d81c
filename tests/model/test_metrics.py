"""A head reports the metrics its config lists, measured on its probabilities."""

from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.builtin.heads import ClassificationHead, MultiLabelHead
from kplug.model.metrics import HeadMetric, RealRows

LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0], [-2.0, 1.0, 0.0], [0.3, 0.3, -0.3]], dtype="float32")
IDS = np.array([0, 2, 2, 1])


def value(metric):
    return float(keras.ops.convert_to_numpy(metric.result()))


def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_a_keras_metric_gets_a_classification_heads_probabilities_and_one_hot_targets():
    ours = HeadMetric(keras.metrics.AUC(), ClassificationHead(num_classes=3), one_hot=True, name="auc")
    ours.update_state(IDS, LOGITS)
    reference = keras.metrics.AUC()
    reference.update_state(np.eye(3)[IDS], softmax(LOGITS))
    assert value(ours) == pytest.approx(value(reference), abs=1e-6)
    on_logits = keras.metrics.AUC()
    on_logits.update_state(np.eye(3)[IDS], LOGITS)
    assert value(on_logits) != pytest.approx(value(reference), abs=1e-3)  # the conversion matters here


def test_a_sparse_metric_gets_class_ids_also_from_mixed_rows():
    head = ClassificationHead(num_classes=3)
    from_ids = HeadMetric(keras.metrics.SparseCategoricalAccuracy(), head, one_hot=False)
    from_ids.update_state(IDS, LOGITS)
    mixed = np.eye(3)[IDS] * 0.8 + 0.2 / 3
    from_rows = HeadMetric(keras.metrics.SparseCategoricalAccuracy(), head, one_hot=False)
    from_rows.update_state(mixed, LOGITS)
    assert value(from_ids) == value(from_rows) == 0.5


def test_a_multi_label_heads_metric_sees_sigmoid_probabilities():
    targets = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 0], [1, 1, 0]], dtype="float32")
    ours = HeadMetric(keras.metrics.Precision(), MultiLabelHead(num_classes=3), one_hot=True)
    ours.update_state(targets, LOGITS)
    reference = keras.metrics.Precision()
    reference.update_state(targets, 1 / (1 + np.exp(-LOGITS)))
    assert value(ours) == pytest.approx(value(reference))


class RowSum(keras.metrics.Metric):
    """The mean over examples of the sum of the head's outputs (1 for probabilities)."""

    def __init__(self, name="row_sum"):
        super().__init__(name=name)
        self.total = self.add_variable((), initializer="zeros", name="total")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total.assign_add(keras.ops.sum(y_pred))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(y_pred)[0], "float32"))

    def result(self):
        return self.total / self.count


class RowSumPlugin:
    @kplug.hookimpl
    def kplug_register_metrics(self, register):
        register("row-sum", RowSum)


def test_configured_metrics_are_logged_under_their_names(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["heads"] = [
        {
            "name": "classification",
            "metrics": ["accuracy", "auc", {"name": "f1_score", "options": {"average": "macro"}}, "row-sum"],
        }
    ]
    config["train"] = {"epochs": 8, "verbose": 0, "optimizer": {"learning_rate": 0.01}}
    result = kplug.fit(config, plugins=kplug.load_plugins([RowSumPlugin()], entry_points=False))
    with open(result.run_dir / "metrics.csv") as file:
        columns = next(csv.reader(file))
    for name in ("accuracy", "auc", "f1_score", "row-sum"):
        assert name in columns and f"val_{name}" in columns
    assert "precision" not in columns and not any(c.endswith("_1") or c.endswith("_2") for c in columns)
    assert result.metrics["row-sum"] == pytest.approx(1.0, abs=1e-5)  # probabilities, not logits
    assert result.metrics["auc"] > 0.95 and result.metrics["f1_score"] > 0.9  # the blobs are separable


def test_a_metric_that_cannot_measure_the_head_is_refused_before_training(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["data"]["options"] = {"x": x, "y": y.astype("float32")}
    config["model"]["heads"] = [{"name": "regression", "metrics": ["accuracy"]}]
    with pytest.raises(
        kplug.ConfigError, match="metric 'accuracy' applies to classification and multi-label"
    ):
        kplug.fit(config)


def test_an_unknown_metric_lists_the_registered_ones(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["heads"] = [{"name": "classification", "metrics": ["aucc"]}]
    with pytest.raises(
        kplug.ConfigError, match=r"model\.heads\[0\]\.metrics\[0\]\.name: .*'aucc'.*Did you mean 'auc'"
    ):
        kplug.fit(config)


def test_real_rows_measures_every_row_of_nonzero_weight_equally():
    """Padding rows (weight 0) are skipped; real rows count once, whatever their loss weight."""
    metric = RealRows(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [0.0, 2.0]], dtype="float32")
    metric.update_state(np.array([0, 0, 1, 0]), logits, sample_weight=np.array([3.0, 0.5, 1.0, 0.0]))
    assert metric.name == "accuracy"
    assert float(metric.result()) == pytest.approx(2 / 3)  # rows 0 and 2 right, row 1 wrong, row 3 padding
