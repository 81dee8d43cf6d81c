"""``kplug doctor``: the backend, its devices, library versions, plugin health and the process group.

It answers in seconds: it imports no Keras and loads no plugin. Components, plugin versions,
failures and what ``distribution: auto`` would try come from the plugin index
(``kplug.cli.plugin_index``, the same as ``kplug plugins``), versions from the installed
distributions' metadata, the devices from the backend library alone.
"""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from kplug.backend.active import keras_backend_name
from kplug.backend.devices import backend_devices
from kplug.cli.plugin_index import PluginIndex, kplug_version
from kplug.distribute.process_group import process_group
from kplug.errors import KplugError

BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch", "numpy": "numpy"}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def describe_auto(index: PluginIndex, backend: str) -> dict[str, Any]:
    """What ``distribution: auto`` tries on ``backend``, in order, and what it falls back to.

    Each offer decides at ``kplug train`` from the devices and processes it finds (its ``when``).
    """
    tries = [
        {"name": name, "provider": provider, "when": when}
        for name, provider, backends, _priority, when in index.auto_offers
        if not backends or backend in backends
    ]
    return {"tries": tries, "otherwise": "single-device"}


def _process_group() -> dict[str, Any]:
    try:
        return process_group().describe()
    except KplugError as error:
        return {"error": str(error)}


def diagnose(index: PluginIndex, backend: str | None = None) -> dict[str, Any]:
    """Facts about this installation, for ``kplug doctor`` and bug reports.

    Args:
        index: the plugin index of the installed (or given) plugins.
        backend: the Keras backend (default: the one Keras will use here).
    """
    backend = backend or keras_backend_name()
    return {
        "backend": backend,
        "devices": backend_devices(backend),
        "process_group": _process_group(),
        "distribution_auto": describe_auto(index, backend),
        "versions": {
            "python": platform.python_version(),
            "kplug": kplug_version(),
            "keras": _version("keras"),
            backend: _version(BACKEND_PACKAGES.get(backend, backend)),
        },
        "plugins": dict(index.providers),
        "components": len(index.components),
        "failures": [f"{name}: {error}" for name, error in index.failures],
    }
