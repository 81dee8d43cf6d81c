"""Shared fixtures: the MiniLM files, a vocabulary, this plugin loaded hermetically."""

from __future__ import annotations

from pathlib import Path

import kplug
import pytest
from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401

import kplug_text
from kplug_text.checkpoints import minilm_path


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The installed all-MiniLM-L6-v2 files."""
    return minilm_path()


@pytest.fixture(scope="session")
def vocabulary(minilm_dir: Path) -> str:
    """A real WordPiece vocabulary (MiniLM's, uncased) for the random-init models."""
    return str(minilm_dir / "vocab.txt")


@pytest.fixture
def plugins() -> kplug.Plugins:
    """Built-ins plus this plugin passed in Python: hermetic, whatever else is installed."""
    return kplug.load_plugins([kplug_text], entry_points=False)
