"""``kplug doctor``: the backend, its devices, library versions and plugin health."""

from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

import keras

from kplug.distribute.auto import describe_auto
from kplug.distribute.devices import list_devices
from kplug.plugin.manager import Plugins, kplug_version

BACKEND_PACKAGES = {"jax": "jax", "tensorflow": "tensorflow", "torch": "torch", "numpy": "numpy"}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def diagnose(plugins: Plugins) -> dict[str, Any]:
    """Facts about this installation, for ``kplug doctor`` and bug reports."""
    backend = keras.backend.backend()
    return {
        "backend": backend,
        "devices": list_devices(),
        "distribution_auto": describe_auto(plugins),
        "versions": {
            "python": platform.python_version(),
            "kplug": kplug_version(),
            "keras": keras.__version__,
            backend: _version(BACKEND_PACKAGES.get(backend, backend)),
        },
        "plugins": plugins.versions(),
        "components": sum(1 for _ in plugins.registry),
        "failures": [f"{f.name}: {f.error}" for f in plugins.failures],
    }
