"""The compile settings ``kplug bench --apply`` chose for a config, kept for ``train.compile: auto``.

One JSON file per config in ``$KPLUG_CACHE_DIR/bench/`` (default ``~/.cache/kplug/bench/``),
named by a hash of the config without the fields that do not change the speed of a
training step (``train.compile``, ``train.verbose``, ``output``, ``name``, ``tune``). It holds
the fastest settings measured on each backend and the recommended backend, so a record
applies only to the same config on the same backend; edit the config (data, model, batch
size, ...) and it no longer applies. Configs on in-memory arrays are keyed by the arrays'
dtype and shape, not their values.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from kplug.cache import cache_dir
from kplug.config.schema import RunConfig

# fields that do not change what one training step costs
_IGNORED_TOP = ("name", "output", "tune")
_IGNORED_TRAIN = ("compile", "verbose")


def config_key(config: RunConfig) -> str:
    """A hash of what in ``config`` decides the speed of a training step."""
    data = {k: v for k, v in config.to_dict().items() if k not in _IGNORED_TOP}
    data["train"] = {k: v for k, v in data["train"].items() if k not in _IGNORED_TRAIN}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def record_path(config: RunConfig) -> Path:
    """Where the record of ``config`` lives."""
    return cache_dir() / "bench" / f"{config_key(config)}.json"


def read_record(config: RunConfig) -> dict[str, Any] | None:
    """The record of ``config``, or ``None`` when there is none (or it cannot be read)."""
    try:
        return json.loads(record_path(config).read_text())
    except (OSError, ValueError):
        return None


def recorded_settings(config: RunConfig, backend: str) -> dict[str, Any] | None:
    """The compile settings recorded for ``config`` on ``backend``, or ``None``."""
    record = read_record(config) or {}
    settings = record.get("settings", {}).get(backend)
    return dict(settings) if isinstance(settings, dict) else None


def write_record(config: RunConfig, record: dict[str, Any]) -> Path:
    """Write ``record`` ({"recommended": {...}, "settings": {backend: {...}}, ...}) for ``config``."""
    path = record_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=True))
    temporary.replace(path)
    return path
