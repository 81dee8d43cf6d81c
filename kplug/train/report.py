"""``report.json``: what a finished run trained, on what, and how it scored."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import keras

from kplug.config.compile_record import read_record
from kplug.config.schema import RunConfig
from kplug.data.inputs import PreparedData
from kplug.plugin.manager import Plugins, kplug_version
from kplug.plugin.precision import Precision, layer_dtypes
from kplug.train.best_model import read_best
from kplug.train.checkpoint import TrainingState


def run_report(
    *,
    config: RunConfig,
    plugins: Plugins,
    model: keras.Model,
    data: PreparedData,
    precision: Precision,
    placement: dict[str, Any],
    state: TrainingState,
    metrics: dict[str, Any],
    timings: dict[str, float],
    run_dir: Path,
    warnings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report of one run (written to ``report.json`` by rank 0).

    Args:
        placement: the distribution's ``describe(model)``.
        state: the training state at the end (its per-stage reports and init summary).
        metrics: the final evaluation (``split`` and each metric).
        timings: wall-clock seconds of the run's phases.
        warnings: the Python warnings raised while training (``WarningLog.summary()``), with counts.
    """
    splits = data.splits
    return {
        "name": config.name,
        "backend": keras.backend.backend(),
        "versions": {
            "kplug": kplug_version(),
            "keras": keras.__version__,
            "python": platform.python_version(),
            "plugins": plugins.versions(),
        },
        "seed": config.seed,
        "precision": precision.name,
        "precision_settings": precision.describe(),
        "layer_dtypes": layer_dtypes(model),
        "distribution": placement,
        "data": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test),
            "labels": {t: m.names for t, m in data.label_maps.items()},
        },
        "parameters": int(model.count_params()),
        "init": state.init,
        "stages": state.stages,
        "metrics": metrics,
        "best": read_best(run_dir),
        "timings": timings,
        "compile": compile_report(config, model),
        "warnings": warnings or [],
    }


def compile_report(config: RunConfig, model: keras.Model) -> dict[str, Any]:
    """The compile settings the model trained with, and what ``kplug bench --apply`` recommended.

    ``bench`` holds the recommended backend and settings recorded for this config
    (``kplug.config.compile_record``), or ``None`` when the config was never benched.
    """
    recorded = read_record(config) or {}
    return {
        "config": config.train.compile
        if config.train.compile == "auto"
        else config.train.compile.model_dump(),
        "jit_compile": getattr(model, "jit_compile", None),
        "steps_per_execution": getattr(model, "steps_per_execution", None),
        "bench": recorded.get("recommended"),
    }
