"""``kplug.bench``: probe a run config on each installed backend and compile setting, recommend the fastest.

Each probe (``kplug.speed.probe``) runs in its own child process with ``KERAS_BACKEND``
set, so backends never share a process, and is killed after ``timeout`` seconds. A
failed probe is reported with its one-line error. The recommendation is the probe with
the shortest estimated full run (training at the measured rate plus compile time).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplug.config.load import load_config
from kplug.config.schema import RunConfig
from kplug.errors import ConfigError
from kplug.speed.candidates import BACKENDS, candidates, label


@dataclass
class Probe:
    """One probe: a backend and compile settings, and what it measured (or its error)."""

    backend: str
    settings: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0  # wall time of the child process

    @property
    def rate(self) -> float | None:
        return self.result.get("samples_per_second")

    @property
    def estimate(self) -> float | None:
        return self.result.get("estimate_seconds")

    def line(self) -> str:
        """One line of the table: backend, settings, samples/s, compile time, estimated run time."""
        name = f"{self.backend:<10} {label(self.settings):<42}"
        if self.error is not None:
            return f"{name} failed: {self.error}"
        return (
            f"{name} {self.rate:>10.0f} samples/s  compile {self.result['compile_seconds']:5.1f} s  "
            f"full run ~{format_seconds(self.estimate)}"
        )


@dataclass
class BenchResult:
    """All probes of ``kplug.bench`` and the recommended one (``None`` when every probe failed)."""

    config: RunConfig
    probes: list[Probe]
    best: Probe | None

    def best_per_backend(self) -> dict[str, Probe]:
        """The probe with the shortest estimated run on each backend that measured."""
        best: dict[str, Probe] = {}
        for probe in self.probes:
            if probe.error is None and (
                probe.backend not in best or probe.estimate < best[probe.backend].estimate
            ):
                best[probe.backend] = probe
        return best

    def summary(self, table: bool = True) -> str:
        """The table (one line per probe) and the recommendation, as ``kplug bench`` prints them."""
        lines = [probe.line() for probe in self.probes] if table else []
        if self.best is None:
            lines.append("No probe ran: nothing to recommend.")
        else:
            first = self.best.result
            lines.append(
                f"Recommended: {self.best.backend} with train.compile: {compact(self.best.result['settings'])} "
                f"({self.best.rate:.0f} samples/s; {first['train_examples']} examples x "
                f"{sum(first['stage_epochs'])} epochs ~{format_seconds(self.best.estimate)})"
            )
        return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def compact(settings: dict[str, Any]) -> str:
    """``{jit_compile: true, steps_per_execution: 8}`` (YAML flow style)."""
    return "{" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in settings.items()) + "}"


def installed_backends() -> list[str]:
    """The backends whose library is installed (found, not imported)."""
    return [name for name in BACKENDS if importlib.util.find_spec(name) is not None]


def _check_backends(backends: list[str] | None) -> list[str]:
    installed = installed_backends()
    if backends is None:
        return installed
    for name in backends:
        if name not in BACKENDS:
            raise ConfigError(f"--backends: unknown backend {name!r}; choose from {', '.join(BACKENDS)}.")
        if name not in installed:
            raise ConfigError(
                f"--backends: {name} is not installed here (installed: {', '.join(installed)})."
            )
    return list(backends)


def run_probe(
    config: RunConfig, backend: str, settings: dict[str, Any], steps: int, timeout: float, workdir: Path
) -> Probe:
    """Run one probe in a child process with ``KERAS_BACKEND=backend``; kill it after ``timeout`` s."""
    probe = Probe(backend, settings)
    request, result = workdir / f"request-{backend}.pkl", workdir / "result.json"
    result.unlink(missing_ok=True)
    request.write_bytes(
        pickle.dumps({"config": config, "settings": settings, "steps": steps, "max_seconds": timeout / 3})
    )
    env = {**os.environ, "KERAS_BACKEND": backend}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kplug.speed.probe", str(request), str(result)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        probe.error = f"timed out after {timeout:.0f} s"
        return probe
    finally:
        probe.seconds = time.perf_counter() - started
    if not result.is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        probe.error = f"exit code {done.returncode}: {lines[-1] if lines else 'no output'}"
        return probe
    answer = json.loads(result.read_text())
    probe.error = answer.get("error")
    probe.result = {} if probe.error else answer
    return probe


def bench(
    config: str | Path | dict[str, Any] | RunConfig,
    backends: list[str] | None = None,
    steps: int = 30,
    settings: list[str] | None = None,
    timeout: float = 180.0,
    progress: Callable[[str], None] | None = None,
) -> BenchResult:
    """Probe ``config`` on each backend and compile setting; recommend the fastest full run.

    Args:
        config: a run config file, dict or ``RunConfig`` (sent to the child processes pickled).
        backends: backends to probe (default: every installed one).
        steps: training batches timed per probe, after a warm-up.
        settings: ``all`` (default), ``default`` (Keras' own), or ``KEY=VALUE,...`` settings
            (``kplug.speed.candidates``).
        timeout: seconds after which a probe is stopped and shown as failed.
        progress: called with a line as each probe starts and ends (``kplug bench`` prints them).

    Returns:
        A ``BenchResult``; ``kplug.speed.apply`` records and writes its choice.
    """
    config = load_config(config)
    if steps < 1:
        raise ConfigError(f"--steps {steps}: give a positive number of batches to time.")
    plan = [
        (backend, chosen) for backend in _check_backends(backends) for chosen in candidates(backend, settings)
    ]
    try:
        pickle.dumps(config)
    except Exception as error:
        raise ConfigError(
            f"kplug bench runs each probe in its own process and cannot send this config there "
            f"({type(error).__name__}: {error}); give a config file or a config of plain values."
        ) from None
    probes: list[Probe] = []
    with tempfile.TemporaryDirectory(prefix="kplug-bench-") as tmp:
        for number, (backend, chosen) in enumerate(plan, 1):
            head = f"[{number}/{len(plan)}]"
            if progress is not None:
                progress(f"{head} {backend} {label(chosen)} ...")
            probe = run_probe(config, backend, chosen, steps, timeout, Path(tmp))
            probes.append(probe)
            if progress is not None:
                progress(f"{head} {probe.line()}  ({probe.seconds:.0f} s)")
    measured = [probe for probe in probes if probe.error is None]
    best = min(measured, key=lambda probe: probe.estimate) if measured else None
    return BenchResult(config, probes, best)
