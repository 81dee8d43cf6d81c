"""The run directory: every file a run writes, each written atomically (temp file, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from kplug.errors import ConfigError

CONFIG_FILE = "config.yaml"
REPORT_FILE = "report.json"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)`` then rename it onto ``path``, so ``path`` is never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def save_model(model: keras.Model, path: Path) -> None:
    """Save a ``.keras`` model atomically."""
    atomic_write(path, lambda tmp: model.save(tmp))


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Create the run directory; refuse to mix a new run into an existing one.

    Raises:
        ConfigError: the directory already holds a run and ``overwrite`` is false, it
            holds something that is not a kplug run, or it cannot be created.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output.dir = {str(path)!r} is a file; choose a directory path.")
    if path.is_dir() and any(path.iterdir()):
        if not (path / CONFIG_FILE).is_file():
            raise ConfigError(
                f"output.dir = {str(path)!r} is a non-empty directory that is not a kplug run "
                f"(no {CONFIG_FILE}); kplug will not write into or replace it. Choose another directory."
            )
        if not overwrite:
            raise ConfigError(
                f"output.dir = {str(path)!r} already holds a run. Choose another --output DIR, "
                f"continue it with `kplug train --resume {path}`, or set output.overwrite: true."
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"output.dir = {str(path)!r}: cannot create the run directory ({error.strerror})."
        ) from None
    return path
