"""Typed kplug exceptions. Each message names the problem and what is allowed.

The CLI turns any ``KplugError`` into exit code 2 and a one-paragraph message
without a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class KplugError(Exception):
    """Base class of every error kplug raises on bad input."""


class ConfigError(KplugError, ValueError):
    """A run config (or a component's options) is invalid."""


class DataError(KplugError, ValueError):
    """Data could not be read or does not fit the run."""


class PluginError(KplugError, RuntimeError):
    """A plugin is broken: it failed to import, raised in a hook or registered badly."""


class CheckpointError(KplugError, ValueError):
    """A checkpoint or run directory cannot be loaded."""


class TrainingError(KplugError, RuntimeError):
    """Training cannot go on (e.g. the loss became nan or infinite); the message says where and why."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the registered name most like ``name``, or ``None`` if none is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    match = closest(name, choices)
    return f" Did you mean '{match}'?" if match else ""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (Keras messages run long).

    Keras wraps a layer's error as "Exception encountered when calling X.call()" followed
    by the real message (in ANSI bold); both are kept, without the escape codes.
    """
    text = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(error)).splitlines() if line.strip()]
    if not text:
        return type(error).__name__
    if text[0].startswith("Exception encountered when calling") and len(text) > 1:
        return f"{text[0]} {text[1]}"
    return text[0]
