"""pytest helpers for kplug and plugin packages' test suites (needs pytest installed).

In a ``conftest.py``::

    from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

adds the ``backends`` marker: ``@pytest.mark.backends("jax", "tensorflow")`` runs a test only
when KERAS_BACKEND is one of those and skips it, saying why, otherwise; and the ``slow`` marker:
``@pytest.mark.slow`` tests (slow end-to-end cases) run only with ``pytest --slow``, which CI
passes (``nox -s tests -- --slow``). ``@pytest.mark.slow("jax")`` is slow on the backends named
only (a case JAX compiles for long): on the others it is in the quick set. ``--only-slow`` runs
just the cases that are slow on the active backend (CI's second pass after the quick set). With
``--slow`` or ``--only-slow``, the summary ends with a line saying how long the slow cases took and
how long the rest (the quick set ``nox -s tests`` runs) took.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from typing import Any

import keras
import pytest

KPLUG_ENVIRONMENT = ("KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS", "KPLUG_TRACE_PLUGINS")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--slow``: also run the tests marked ``slow``.

    Several suites' conftests may share one session (``pytest a/tests b/tests``): the first adds it.
    """
    try:
        parser.addoption(
            "--slow",
            action="store_true",
            default=False,
            help="also run the tests marked slow (slow end-to-end cases; CI runs them)",
        )
        parser.addoption(
            "--only-slow",
            action="store_true",
            default=False,
            help="run only the tests that are slow on the active backend (CI runs them after the quick set)",
        )
    except ValueError:  # "option names {'--slow'} already added" by another suite's conftest
        pass


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``backends(*names)`` and ``slow`` markers."""
    config.addinivalue_line("markers", "backends(*names): run only on these Keras backends")
    config.addinivalue_line(
        "markers",
        "slow(*backends): a slow end-to-end case (on the backends named, or on all), run only with --slow (CI runs them)",
    )
    clocked = config.getoption("slow", default=False) or config.getoption("only_slow", default=False)
    if clocked and not config.pluginmanager.has_plugin(SlowCaseClock.NAME):
        # pytest-xdist: the controller sees every worker's reports; its -n option is the worker count
        workers = 0 if hasattr(config, "workerinput") else config.getoption("numprocesses", default=0) or 0
        config.pluginmanager.register(SlowCaseClock(int(workers)), SlowCaseClock.NAME)


class SlowCaseClock:
    """Adds up the time of the slow cases, to tell how long the session takes without them.

    ``workers``: the pytest-xdist worker count (0: one process). Workers run cases side by side, so
    there the line compares test time summed over the workers, not wall time.
    """

    NAME = "kplug-slow-case-clock"

    def __init__(self, workers: int = 0) -> None:
        self.started = time.monotonic()
        self.workers = workers
        self.slow_seconds = 0.0
        self.test_seconds = 0.0
        self.slow_tests: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Add one phase (setup, call, teardown) of a case to the total, and of a slow case to the slow
        total."""
        self.test_seconds += report.duration
        if SLOW_HERE in report.keywords:
            self.slow_seconds += report.duration
            self.slow_tests.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """End the summary with ``slow cases: 12 tests, 301.2 s of 380.1 s; the quick set: 78.9 s``
        (on xdist workers: ``... 301.2 s of 450.3 s of test time on 2 workers (wall 260.4 s); ...``)."""
        wall = time.monotonic() - self.started
        count = f"slow cases: {len(self.slow_tests)} tests, {self.slow_seconds:.1f} s of "
        if self.workers:
            terminalreporter.write_line(
                f"{count}{self.test_seconds:.1f} s of test time on {self.workers} workers (wall {wall:.1f} s); "
                f"the quick set: {self.test_seconds - self.slow_seconds:.1f} s of test time"
            )
            return
        terminalreporter.write_line(f"{count}{wall:.1f} s; the quick set: {wall - self.slow_seconds:.1f} s")


# The keyword collection gives a case that is slow on the active backend (reports carry it, across
# pytest-xdist workers too).
SLOW_HERE = "kplug_slow_here"


def slow_here(item: pytest.Item, backend: str) -> bool:
    """Whether ``item`` is marked ``slow`` (without backends, or naming ``backend``)."""
    marker = item.get_closest_marker("slow")
    return marker is not None and (not marker.args or backend in marker.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked for other backends than the active one, and slow tests without ``--slow``;
    with ``--only-slow``, deselect every test that is not slow on the active backend."""
    backend = keras.backend.backend()
    only_slow = config.getoption("only_slow", default=False)
    run_slow = config.getoption("slow", default=False) or only_slow
    if only_slow:
        quick = [item for item in items if not slow_here(item, backend)]
        if quick:
            config.hook.pytest_deselected(items=quick)
            items[:] = [item for item in items if slow_here(item, backend)]
    for item in items:
        if slow_here(item, backend):
            item.keywords[SLOW_HERE] = True
            if not run_slow:
                item.add_marker(pytest.mark.skip(reason="slow end-to-end case: run with --slow (CI does)"))
        marker = item.get_closest_marker("backends")
        if marker and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(reason=f"needs backend {', '.join(marker.args)}; running {backend}")
            )


def slow_params(values: Iterable[Any], slow: Collection[Any], *backends: str) -> list[Any]:
    """``values`` for ``pytest.mark.parametrize``, those in ``slow`` marked ``slow(*backends)``.

    ``slow_params(sorted(BACKBONES), {"vit"}, "jax")`` makes the ``vit`` case slow on jax only
    (no backends: slow everywhere); the other values stay as they are.
    """
    unknown = set(slow) - set(values := list(values))
    if unknown:
        raise ValueError(f"slow_params: {sorted(unknown)} are not among the values {values}")
    mark = pytest.mark.slow(*backends) if backends else pytest.mark.slow
    return [pytest.param(value, marks=mark) if value in slow else value for value in values]


def clear_plugin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the KPLUG_* variables that change which plugins load, for one test."""
    for name in KPLUG_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


# Internals that plugin packages' test suites drive directly (the command line in-process, a run's
# checkpoints and metrics, kplug's batch stream). For tests only, imported when first used; plugin
# code itself uses ``kplug.plugin``.
_TEST_HELPERS: dict[str, tuple[str, str]] = {
    "run_cli": ("kplug.cli.main", "main"),  # run_cli(["train", "run.yaml"]) -> exit code
    "latest_checkpoint": ("kplug.train.checkpoint", "latest_checkpoint"),
    "metrics_history": ("kplug.train.metrics_file", "metrics_history"),
    "read_metrics": ("kplug.train.metrics_file", "read_metrics"),
    "TrainingBatches": ("kplug.data.batches", "TrainingBatches"),
    "build_batch_transforms": ("kplug.model.assembly", "build_batch_transforms"),
    "dtype_policy": ("kplug.train.trainer", "dtype_policy"),
    "read_idx_file": ("kplug.builtin.datasets", "read_idx_file"),
    "launch": ("kplug.distribute.processes", "launch"),
    "free_port_block": ("kplug.distribute.processes", "free_port_block"),
    "tf_config": ("kplug.backend.tf_config", "tf_config"),
}


def __getattr__(name: str) -> object:
    if name not in _TEST_HELPERS:
        raise AttributeError(f"module 'kplug.testing' has no attribute {name!r}")
    import importlib

    module_name, attribute = _TEST_HELPERS[name]
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value
