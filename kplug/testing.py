"""pytest helpers for kplug and plugin packages' test suites (needs pytest installed).

In a ``conftest.py``::

    from kplug.testing import pytest_collection_modifyitems, pytest_configure  # noqa: F401

adds the ``backends`` marker: ``@pytest.mark.backends("jax", "tensorflow")`` runs a test only
when KERAS_BACKEND is one of those and skips it, saying why, otherwise.
"""

from __future__ import annotations

import keras
import pytest

KPLUG_ENVIRONMENT = ("KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS", "KPLUG_TRACE_PLUGINS")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``backends(*names)`` marker."""
    config.addinivalue_line("markers", "backends(*names): run only on these Keras backends")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked for other backends than the active one."""
    backend = keras.backend.backend()
    for item in items:
        marker = item.get_closest_marker("backends")
        if marker and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(reason=f"needs backend {', '.join(marker.args)}; running {backend}")
            )


def clear_plugin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset the KPLUG_* variables that change which plugins load, for one test."""
    for name in KPLUG_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
