"""How a model's variables are laid out over devices, as ``report.json`` records it."""

from __future__ import annotations

import keras


def sharding_table(model: keras.Model) -> dict[str, str]:
    """Each variable's path and how it is placed (for ``report.json``), where the backend says."""
    table = {}
    for variable in model.weights:
        value = getattr(variable, "value", None)
        sharding = getattr(value, "sharding", None)
        spec = getattr(sharding, "spec", None)
        table[variable.path] = str(spec) if spec is not None else str(sharding)
    return table
