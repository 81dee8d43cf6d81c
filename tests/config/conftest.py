"""A minimal valid run config for the config tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def minimal_config() -> dict[str, Any]:
    """The smallest valid run config: idx data, an MLP with one classification head."""
    return {
        "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
        "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
    }
