"""The registry: lookup by name, unknown names list what exists, iteration order."""

from __future__ import annotations

import pytest

from kplug.errors import ConfigError


def test_unknown_name_lists_registered_names_and_closest(plugins):
    with pytest.raises(ConfigError) as error:
        plugins.registry.get("backbone", "small-cn", where="model.backbone.name")
    message = str(error.value)
    assert message.startswith("model.backbone.name: Unknown backbone 'small-cn'.")
    assert "Did you mean 'small-cnn'?" in message
    assert "Registered backbones: mlp, small-cnn" in message


def test_iteration_lists_every_component_with_kind_and_provider(plugins):
    rows = [(c.kind, c.name) for c in plugins.registry]
    assert rows[0] == ("backbone", "mlp")
    assert ("callback", "early-stopping") in rows
    assert all(c.provider for c in plugins.registry)
