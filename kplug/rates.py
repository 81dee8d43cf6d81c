"""Discriminative learning rates: a rate per layer group and layer-wise decay, inside the compiled step.

Keras optimizers apply one learning rate to every variable. kplug groups the
trainable variables by a rate multiplier and calls the optimizer's own update
once per group with ``learning_rate * multiplier``. The grouping happens in Python
while the train step is traced, so the compiled step holds plain constants and
every backend keeps its fused optimizer kernels.
"""

from __future__ import annotations

import types
from typing import Any

import keras

from kplug.errors import ConfigError
from kplug.freezing import backbone_blocks, check_pattern, pattern_matches
from kplug.transfer import variable_paths


def _layer_prefixes(path: str) -> list[str]:
    parts = path.split("/")[:-1]  # the variable's layer path and every layer above it
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def rate_multipliers(
    model: keras.Model,
    base_rate: float,
    learning_rates: dict[str, float],
    layer_decay: float | None,
    where: str,
) -> dict[str, float]:
    """Each variable's learning-rate multiplier by logical path (1.0 when no rule applies).

    ``learning_rates`` maps layer-path patterns to absolute rates (first match wins);
    ``layer_decay`` scales the backbone's top block by ``decay``, the next by
    ``decay**2`` and so on down to the first block, leaving the heads at 1.

    Raises:
        ConfigError: a pattern that matches no variable.
    """
    paths = variable_paths(model)
    multipliers = dict.fromkeys(paths, 1.0)
    for pattern in learning_rates:
        check_pattern(pattern, f"{where}.learning_rates")
    unused = set(learning_rates)
    for path in paths:
        for pattern, rate in learning_rates.items():
            if any(pattern_matches(pattern, prefix) for prefix in _layer_prefixes(path)):
                multipliers[path] = rate / base_rate
                unused.discard(pattern)
                break
    if unused:
        layers = sorted({p.rsplit("/", 1)[0] for p in paths})
        raise ConfigError(
            f"{where}.learning_rates: pattern(s) {', '.join(map(repr, sorted(unused)))} match no layer. "
            f"Layer paths: {', '.join(layers[:40])}."
        )
    if layer_decay is not None and layer_decay != 1.0:
        blocks = backbone_blocks(model)
        for path in paths:
            if not path.startswith("backbone/"):
                continue
            depth = next(
                (len(blocks) - i for i, block in enumerate(blocks) if path.startswith(block + "/")),
                len(blocks) + 1,  # weights of the backbone itself sit below its first block
            )
            multipliers[path] *= layer_decay**depth
    return multipliers


def summarise_rates(multipliers: dict[str, float], base_rate: float) -> dict[str, float]:
    """Learning rate per top layer path (``backbone/conv1``, ``heads/digits``) for the report."""
    summary: dict[str, float] = {}
    for path, multiplier in multipliers.items():
        parts = path.split("/")
        group = "/".join(parts[:2]) if len(parts) > 2 else parts[0]
        summary.setdefault(group, float(f"{base_rate * multiplier:.6g}"))
    return summary


def apply_rate_multipliers(
    optimizer: keras.optimizers.Optimizer, model: keras.Model, multipliers: dict[str, float]
) -> None:
    """Make ``optimizer`` update each variable with the base rate times its multiplier."""
    by_variable = {id(variable): multipliers[path] for path, variable in variable_paths(model).items()}
    if all(value == 1.0 for value in by_variable.values()):
        return
    update = optimizer._backend_update_step

    def grouped_update(self: Any, grads: list[Any], variables: list[Any], learning_rate: Any) -> None:
        groups: dict[float, tuple[list[Any], list[Any]]] = {}
        for grad, variable in zip(grads, variables, strict=True):
            scale = by_variable.get(id(variable), 1.0)
            groups.setdefault(scale, ([], []))
            groups[scale][0].append(grad)
            groups[scale][1].append(variable)
        for scale, (group_grads, group_variables) in groups.items():
            rate = learning_rate if scale == 1.0 else learning_rate * scale
            update(group_grads, group_variables, rate)

    optimizer._backend_update_step = types.MethodType(grouped_update, optimizer)
