"""kplug-text's layers found in saved models before keras-hub is imported.

The encoders subclass keras-hub classes, so defining them imports keras-hub (and
TensorFlow). Registering the plugin must not, yet ``kplug predict`` loads a run's
``model.keras`` without building a backbone. Each layer name is therefore registered
with Keras as a stand-in whose ``from_config`` imports ``kplug_text.encoders`` (which
registers the real class under the same name) and builds the real layer.
"""

from __future__ import annotations

from typing import Any

import keras

PACKAGE = "kplug_text"
LAYERS = ("BertEncoder", "DistilBertEncoder", "SequencePooling")


class StandIn:
    """Deserialises one kplug-text layer by importing its real class first."""

    def __init__(self, name: str) -> None:
        self.name = name

    def from_config(self, config: dict[str, Any]) -> keras.layers.Layer:
        """Build the real layer from a saved config."""
        from kplug_text import encoders

        return getattr(encoders, self.name).from_config(config)


def register_stand_ins() -> None:
    """Register a stand-in for every kplug-text layer not registered yet (idempotent)."""
    registered = keras.saving.get_custom_objects()
    for name in LAYERS:
        registered.setdefault(f"{PACKAGE}>{name}", StandIn(name))
