"""metrics.csv: one row per epoch (stage, epoch, every metric) and its history (curves.png: ``curves``).

Keras' CSVLogger has no stage column and fixes its columns on the first epoch; this
log writes each row atomically so an interrupted run keeps its history, and is cut
back to the last checkpoint on resume.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import keras

from kplug.train.rundir import atomic_write


class MetricsLog(keras.callbacks.Callback):
    """Append one row per epoch to metrics.csv (stage, epoch and every metric Keras logged)."""

    def __init__(self, path: Path, stage: int) -> None:
        super().__init__()
        self.path = path
        self.stage = stage

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        logs.pop("learning_rate", None)
        row = {"stage": self.stage, "epoch": epoch + 1, **{k: float(v) for k, v in sorted(logs.items())}}
        append_metrics_row(self.path, row)


def _read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for item in rows:
        columns += [key for key in item if key not in columns]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def append_metrics_row(path: Path, row: dict[str, Any]) -> None:
    """Append a row to a CSV whose header grows when new columns appear."""
    _write_rows(path, [*_read_rows(path), row])


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Rows of metrics.csv as floats."""
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in _read_rows(path)]


def truncate_metrics(path: Path, epochs: int) -> None:
    """Drop rows after ``epochs`` (written by an interrupted run after its last checkpoint)."""
    rows = [row for row in _read_rows(path) if int(float(row["epoch"])) <= epochs]
    _write_rows(path, rows)


def last_epoch(path: Path) -> int:
    """The last epoch recorded in metrics.csv (0 when there is none)."""
    rows = _read_rows(path)
    return int(float(rows[-1]["epoch"])) if rows else 0


def metrics_history(path: Path) -> dict[str, list[float]]:
    """metrics.csv as Keras-style history: metric name -> one value per epoch."""
    history: dict[str, list[float]] = {}
    for row in read_metrics(path):
        for name, value in row.items():
            if name not in ("stage", "epoch"):
                history.setdefault(name, []).append(value)
    return history
