"""``kplug bench --apply``: record the choice for ``train.compile: auto`` and write it into the config file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from kplug.config.compile_record import write_record
from kplug.errors import ConfigError
from kplug.speed.run import BenchResult, compact


def record(result: BenchResult) -> Path:
    """Record the fastest settings per backend and the recommended backend (``kplug.config.compile_record``)."""
    if result.best is None:
        raise ConfigError("kplug bench --apply: every probe failed, so there is nothing to apply.")
    best = result.best_per_backend()
    return write_record(
        result.config,
        {
            "recommended": {"backend": result.best.backend, "settings": result.best.result["settings"]},
            "settings": {backend: probe.result["settings"] for backend, probe in best.items()},
            "samples_per_second": {backend: probe.rate for backend, probe in best.items()},
            "estimate_seconds": {backend: probe.estimate for backend, probe in best.items()},
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )


def write_compile_settings(path: str | Path, settings: dict[str, Any]) -> None:
    """Set ``train.compile`` in a YAML config file to ``settings``, leaving every other line as it is.

    The new value is one flow-style line (``compile: {jit_compile: false, steps_per_execution: 8}``)
    replacing the old ``compile`` entry or added as the first entry of ``train``
    (a ``train:`` section is appended when there is none).
    """
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(
            f"{path}: --apply edits YAML configs; add train.compile: {compact(settings)} to this file by hand."
        )
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text)
    if root is not None and not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}: the config is not a mapping, so --apply cannot set train.compile.")
    train = _value(root, "train") if root is not None else None
    if train is None:
        ending = "" if not lines or lines[-1].endswith("\n") else "\n"
        path.write_text(text + ending + f"train:\n  compile: {compact(settings)}\n", encoding="utf-8")
        return
    if not isinstance(train, yaml.MappingNode) or train.flow_style:
        raise ConfigError(
            f"{path}: train is not a block mapping; add train.compile: {compact(settings)} by hand."
        )
    keys = [key for key, _ in train.value]
    at = next((i for i, key in enumerate(keys) if key.value == "compile"), None)
    if at is not None:
        key, value = train.value[at]
        first = key.start_mark.line
        # up to the next entry of train, else to where the value ends
        last = keys[at + 1].start_mark.line - 1 if at + 1 < len(keys) else _last_line(value, lines)
        indent = " " * key.start_mark.column
        lines[first : last + 1] = [f"{indent}compile: {compact(settings)}\n"]
    else:
        child = train.value[0][0] if train.value else None
        column = child.start_mark.column if child is not None else 2
        at = child.start_mark.line if child is not None else train.start_mark.line + 1
        lines.insert(at, f"{' ' * column}compile: {compact(settings)}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _value(mapping: yaml.MappingNode, name: str) -> yaml.Node | None:
    return next((value for key, value in mapping.value if key.value == name), None)


def _last_line(node: yaml.Node, lines: list[str]) -> int:
    """The last line ``node`` occupies (its end mark can sit at column 0 of the next line)."""
    end = node.end_mark
    line = end.line if end.column > 0 else end.line - 1
    return max(node.start_mark.line, min(line, len(lines) - 1))
