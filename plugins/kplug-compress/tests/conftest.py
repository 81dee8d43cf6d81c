"""Shared fixtures: small real runs on the MNIST slice shipped in examples/data.

Tests load this plugin explicitly (``entry_points=False``) so they stay hermetic; the
backend comes from KERAS_BACKEND (nox runs all three).
"""

from __future__ import annotations

import kplug
import pytest
from compress_digits import digits_config
from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

import kplug_compress


@pytest.fixture(scope="session")
def plugins() -> kplug.Plugins:
    """Built-ins plus this plugin, whatever else is installed."""
    return kplug.load_plugins([kplug_compress], entry_points=False)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory, plugins: kplug.Plugins) -> kplug.FitResult:
    """One trained digits run shared by the tests that only read it."""
    return kplug.fit(digits_config(tmp_path_factory.mktemp("runs") / "digits"), plugins=plugins)


@pytest.fixture(scope="session")
def precision_plugins() -> kplug.Plugins:
    """Built-ins, this plugin and kplug-precision (the mixed-precision policies)."""
    import kplug_precision

    return kplug.load_plugins([kplug_compress, kplug_precision], entry_points=False)


@pytest.fixture(scope="session", params=["mixed_float16", "mixed_bfloat16"])
def mixed_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, precision_plugins
) -> kplug.FitResult:
    """The digits run trained under each mixed-precision policy (both run on every backend)."""
    output = tmp_path_factory.mktemp(request.param) / "digits"
    return kplug.fit(digits_config(output, precision={"policy": request.param}), plugins=precision_plugins)
