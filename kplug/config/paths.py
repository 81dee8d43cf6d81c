"""Relative paths in a config file are read relative to the file's directory.

A run config names input files and folders in component ``options`` (data files, checkpoint
folders), in ``init.from`` (a run or weights file to start from) and in ``distill`` (the teacher).
When the config comes from a file, such a relative path (a string there with a ``/`` or a file
extension; write ``./name`` for a bare folder name) is first looked up next to the file: if
something exists there, it is replaced by that absolute path (kept as written when the working
directory is the config's folder, so messages and the saved config show it as the user wrote it), so ``kplug train sub/run.yaml`` and
``kplug.fit("sub/run.yaml")`` read the same files from any working directory. A relative path
with nothing next to the config file is left as written and read from the working directory (so
``init: {from: runs/pretrain}`` still finds a run trained there). Absolute paths, and configs given
as a dict from Python, are unchanged. The run directory (``runs/<name>`` or ``output.dir``) is
an output: it is written relative to the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# sections whose strings may name input files or folders
_PATH_SECTIONS = frozenset({"options", "distill"})
_PATH_KEYS = frozenset({"from"})


def resolve_relative_paths(data: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """Return a copy of config ``data`` with its input paths resolved against ``base``.

    Strings inside ``options`` mappings, the ``distill`` section and ``init.from`` that are
    relative paths (with a ``/`` or a file extension) to an existing file or folder under
    ``base`` become absolute; every other
    value is returned unchanged.
    """
    return _walk(data, Path(base).resolve(), inside=False)


def _walk(value: Any, base: Path, inside: bool) -> Any:
    if isinstance(value, dict):
        return {
            key: _walk(item, base, inside or key in _PATH_SECTIONS or key in _PATH_KEYS)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_walk(item, base, inside) for item in value]
    if inside and isinstance(value, str):
        return _next_to(value, base)
    return value


def _next_to(value: str, base: Path) -> str:
    """``value`` as an absolute path when it names something under ``base``, else unchanged."""
    if not value or value != value.strip() or "\n" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute() or not _looks_like_path(value):
        return value
    candidate = base / path
    try:
        exists = candidate.exists()
    except (OSError, ValueError):  # not a possible file name (too long, NUL byte)
        return value
    if not exists or (Path.cwd() / path).resolve() == candidate.resolve():
        return value  # nothing next to the config, or the working directory finds the same file
    return str(candidate.resolve())


def _looks_like_path(value: str) -> bool:
    """A folder separator or a file extension: ``data/x.csv``, ``weights.npz``, ``./ckpt``.

    A bare word (``label``, ``text``) is a column or a name, even if a file of that name exists.
    """
    return "/" in value or "\\" in value or bool(Path(value).suffix)
