"""The run directory: every file a run writes, each written atomically (temp file, then rename)."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras

from kplug.errors import ConfigError

CONFIG_FILE = "config.yaml"
REPORT_FILE = "report.json"
LABELS_FILE = "labels.json"
CATEGORIES_FILE = "categories.json"  # one-hot categories of text feature columns
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
MODEL_FILE = "model.keras"
CHECKPOINT_DIR = "checkpoints"


def _create_unique(parent: Path, prefix: str, suffix: str, create: Callable[[Path], None]) -> Path:
    """Create ``parent/<prefix><random><suffix>`` with ``create``, which must fail if it exists.

    Like ``tempfile``'s names, but the mode is what the umask gives, as for any file a
    program writes: ``mkstemp`` and ``mkdtemp`` make private 0600 files and 0700
    directories, which another user, a container or a shared TensorBoard cannot read.
    """
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(8)}{suffix}"
        try:
            create(path)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(parent / f"{prefix}*{suffix}"))


def _create_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def new_directory(parent: Path, prefix: str) -> Path:
    """Create a new, uniquely named directory in ``parent`` (mode 0777 less the umask)."""
    return _create_unique(parent, prefix, "", Path.mkdir)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)`` then rename it onto ``path``, so ``path`` is never partial.

    The file gets mode 0666 less the umask, like any file a program writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_unique(path.parent, f".{path.name}.", path.suffix, _create_file)
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
                f"output.dir = {str(path)!r} already holds a run. Write elsewhere (another name, "
                f"`kplug train --output DIR`, or kplug.fit(config, output=DIR)), continue it "
                f"(`kplug train --resume {path}`, or kplug.fit(config, resume={str(path)!r})), or set "
                f"output.overwrite: true to replace it."
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"output.dir = {str(path)!r}: cannot create the run directory ({error.strerror})."
        ) from None
    return path
