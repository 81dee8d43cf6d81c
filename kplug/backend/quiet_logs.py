"""Keep TensorFlow's C++ start-up log lines (absl, oneDNN, CUDA) off the terminal.

TensorFlow 2.21 writes them straight to file descriptor 2 while it is imported and when it
first looks for devices (``WARNING: All log messages before absl::InitializeLog() ...``,
``I0000 ... oneDNN custom operations are on``, ``E0000 ... failed call to cuInit``), before
``TF_CPP_MIN_LOG_LEVEL`` takes effect. ``quiet_tensorflow()`` installs an import hook: when
anything (Keras on the tensorflow backend, keras_hub on the others) first imports
``tensorflow``, file descriptor 2 points at ``/dev/null`` while the module runs and TensorFlow
lists its physical devices, then it is restored. TensorFlow is never imported by the hook itself.

The command line installs it unless ``--debug`` is given or the user set ``TF_CPP_MIN_LOG_LEVEL``
(then TensorFlow logs as the user asked); scripts call ``kplug.quiet_tensorflow()``.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
# Whether the user set TF_CPP_MIN_LOG_LEVEL before kplug set its default (kplug/__init__.py).
USER_SET_LOG_LEVEL = LOG_LEVEL in os.environ


def default_log_level() -> None:
    """Set ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it (called when ``kplug`` is imported)."""
    os.environ.setdefault(LOG_LEVEL, "2")


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Within the block, whatever is written to file descriptor 2 (C++ libraries too) is dropped."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` with file descriptor 2 silenced."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        uninstall()
        with silenced_stderr():
            self._loader.exec_module(module)
            with contextlib.suppress(Exception):  # CUDA's cuInit complaint comes with the first device query
                module.config.list_physical_devices()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do and hands it a ``_QuietLoader``.

    It stays installed until TensorFlow is imported: libraries (Keras, torch) look for
    TensorFlow with ``importlib.util.find_spec`` long before anything imports it.
    """

    def __init__(self) -> None:
        self._finding = False

    def find_spec(
        self, fullname: str, path: Any, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow" or self._finding:
            return None
        self._finding = True  # the other finders, not this one, find the real spec
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow() -> bool:
    """Keep TensorFlow's C++ start-up log lines off the terminal in a script, as the kplug CLI does.

    Call it (``kplug.quiet_tensorflow()``) before anything imports Keras or TensorFlow. It does
    nothing when the user set ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow then logs as they asked) or
    once TensorFlow is imported. Returns whether kplug keeps TensorFlow quiet: False when the
    user set ``TF_CPP_MIN_LOG_LEVEL``.
    """
    if not wanted(debug=False):
        return False
    install()
    return True


def install() -> None:
    """Silence TensorFlow's C++ log lines at its first import (no-op once it is imported)."""
    if "tensorflow" in sys.modules or installed():
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())


def installed() -> bool:
    """Whether the import hook is waiting for TensorFlow's first import."""
    return any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path)


def uninstall() -> None:
    """Remove the import hook."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def wanted(debug: bool) -> bool:
    """Whether to silence TensorFlow: not with ``--debug``, nor when the user set ``TF_CPP_MIN_LOG_LEVEL``."""
    return not debug and not USER_SET_LOG_LEVEL
