"""The ``Model.compile`` settings a probe tries on each backend."""

from __future__ import annotations

from typing import Any

from kplug.errors import ConfigError

BACKENDS = ("jax", "tensorflow", "torch")

# Keras' defaults first: jax XLA, tensorflow no XLA on CPU, torch eager; torch runs one step per call
_ALL: dict[str, list[dict[str, Any]]] = {
    "jax": [
        {"jit_compile": True, "steps_per_execution": 1},
        {"jit_compile": True, "steps_per_execution": 8},
    ],
    "tensorflow": [
        {"jit_compile": False, "steps_per_execution": 1},
        {"jit_compile": True, "steps_per_execution": 1},
        {"jit_compile": False, "steps_per_execution": 8},
        {"jit_compile": True, "steps_per_execution": 8},
    ],
    "torch": [
        {"jit_compile": False, "steps_per_execution": 1},
        {"jit_compile": True, "steps_per_execution": 1},
    ],
}


def label(settings: dict[str, Any]) -> str:
    """``jit_compile=true,steps_per_execution=8``: how settings read on a line and in ``--settings``."""
    return ",".join(f"{key}={str(value).lower()}" for key, value in settings.items())


def parse_settings(text: str) -> dict[str, Any]:
    """``jit_compile=true,steps_per_execution=8`` -> a settings dict (``--settings`` values)."""
    settings: dict[str, Any] = {"jit_compile": "auto", "steps_per_execution": 1}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip().lower()
        if not sep or key not in settings:
            raise ConfigError(
                f"--settings {text!r}: give KEY=VALUE pairs joined by commas, KEY one of "
                f"jit_compile, steps_per_execution (e.g. jit_compile=true,steps_per_execution=8), "
                f"or 'all' / 'default'."
            )
        if key == "jit_compile":
            if value not in ("true", "false", "auto"):
                raise ConfigError(
                    f"--settings {text!r}: jit_compile must be true, false or auto, not {value!r}."
                )
            settings[key] = value if value == "auto" else value == "true"
        else:
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"--settings {text!r}: steps_per_execution must be a positive integer.")
            settings[key] = int(value)
    return settings


def candidates(backend: str, chosen: list[str] | None = None) -> list[dict[str, Any]]:
    """The settings to probe on ``backend``: ``all`` (default), ``default`` (Keras' own), or explicit ones.

    Settings a backend cannot run (``steps_per_execution`` > 1 on torch) are left out.
    """
    chosen = chosen or ["all"]
    found: list[dict[str, Any]] = []
    for text in chosen:
        if text == "all":
            found += _ALL[backend]
        elif text == "default":
            found.append(_ALL[backend][0])
        else:
            found.append(parse_settings(text))
    usable = [s for s in found if not (backend == "torch" and s["steps_per_execution"] > 1)]
    return [s for i, s in enumerate(usable) if s not in usable[:i]]
