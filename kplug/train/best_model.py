"""Keep the best model of a run: ``best.keras`` whenever a monitored metric improves.

``output.save_best: val_accuracy`` saves the model at the end of every epoch whose
``val_accuracy`` beats every earlier epoch's (across all stages of the run), atomically,
with ``best.json`` recording the epoch, stage and value. A resumed run reads
``best.json`` first, so it only replaces the best model with a better one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

import keras

from kplug.train import rundir

BEST_MODEL_FILE = "best.keras"
BEST_RECORD_FILE = "best.json"
# metrics where larger is better; every other metric (losses, errors) is minimised
HIGHER_IS_BETTER = ("accuracy", "auc", "precision", "recall", "f1", "r2")


def direction(monitor: str, mode: Literal["auto", "min", "max"]) -> Literal["min", "max"]:
    """``min`` or ``max`` for ``monitor``: given, or inferred from the metric's name."""
    if mode != "auto":
        return mode
    name = monitor.removeprefix("val_")
    return "max" if any(word in name for word in HIGHER_IS_BETTER) else "min"


class BestModelSaver(keras.callbacks.Callback):
    """Write ``best.keras`` and ``best.json`` into ``run_dir`` when ``monitor`` improves.

    Args:
        run_dir: the run directory.
        monitor: a metric the run logs, e.g. ``val_loss``.
        mode: ``min``, ``max`` or ``auto`` (from the name: accuracy, AUC, ... are maximised).
        stage: the stage this ``fit`` call trains (0-based), recorded in ``best.json``.
    """

    def __init__(
        self, run_dir: Path, monitor: str, mode: Literal["auto", "min", "max"] = "auto", stage: int = 0
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.monitor = monitor
        self.sign = 1.0 if direction(monitor, mode) == "min" else -1.0
        self.stage = stage
        record = read_best(run_dir)
        self.best = record["value"] if record and record["monitor"] == monitor else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is not None and self.sign * value >= self.sign * self.best:
            return
        self.best = value
        rundir.save_model(self.model, self.run_dir / BEST_MODEL_FILE)
        rundir.write_json(
            self.run_dir / BEST_RECORD_FILE,
            {"monitor": self.monitor, "value": value, "epoch": epoch + 1, "stage": self.stage + 1},
        )


def read_best(run_dir: Path) -> dict[str, Any] | None:
    """The ``best.json`` record of a run, or ``None`` when it has none (or an unreadable one)."""
    try:
        return json.loads((run_dir / BEST_RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None
