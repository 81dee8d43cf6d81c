"""Built-in precision policy: float32 everywhere."""

from __future__ import annotations

from kplug.plugin.manager import hookimpl


def float32() -> str:
    """Full float32 precision (Keras' default policy)."""
    return "float32"


@hookimpl
def kplug_register_precision_policies(register):
    """Register the built-in precision policies."""
    register("float32", float32)
