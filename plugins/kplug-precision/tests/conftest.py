"""kplug's pytest options and markers: ``--slow`` and ``@pytest.mark.slow``, ``@pytest.mark.backends``."""

from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401
