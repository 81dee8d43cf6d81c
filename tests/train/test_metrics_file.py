"""metrics.csv: rows per epoch, growing columns, truncation on resume, history."""

from __future__ import annotations

from kplug.train import metrics_file as metrics


def test_metrics_rows_grow_columns_truncate_and_read_back(tmp_path):
    path = tmp_path / "metrics.csv"
    metrics.append_metrics_row(path, {"stage": 1, "epoch": 1, "loss": 0.5})
    metrics.append_metrics_row(path, {"stage": 1, "epoch": 2, "loss": 0.25, "val_loss": 0.3})
    assert metrics.metrics_history(path) == {"loss": [0.5, 0.25], "val_loss": [0.3]}
    assert metrics.last_epoch(path) == 2
    metrics.truncate_metrics(path, 1)
    assert metrics.read_metrics(path) == [{"stage": 1.0, "epoch": 1.0, "loss": 0.5}]
