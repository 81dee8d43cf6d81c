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
from kplug.model.freezing import backbone_blocks
from kplug.model.paths import DIALECT, SHOWN, PathPattern, variable_paths


def rate_multipliers(
    model: keras.Model,
    base_rate: float,
    learning_rates: dict[str, float],
    layer_decay: float | None,
    where: str,
) -> dict[str, float]:
    """Each variable's learning-rate multiplier by logical path (1.0 when no rule applies).

    ``learning_rates`` maps patterns (``kplug.model.paths``: a variable is selected by its
    path or a layer holding it) to absolute rates, first match wins;
    ``layer_decay`` scales the backbone's top block by ``decay``, the next by
    ``decay**2`` and so on down to the first block, leaving the heads at 1.

    Raises:
        ConfigError: a pattern that matches no variable.
    """
    paths = variable_paths(model)
    multipliers = dict.fromkeys(paths, 1.0)
    field = f"{where}.learning_rates"
    rules = [(PathPattern.compile(text, field), rate) for text, rate in learning_rates.items()]
    unused = set(learning_rates)
    for path in paths:
        for pattern, rate in rules:
            if pattern.matches_variable(path):
                multipliers[path] = rate / base_rate
                unused.discard(pattern.text)
                break
    if unused:
        layers = sorted({p.rsplit("/", 1)[0] for p in paths})
        raise ConfigError(
            f"{field}: pattern(s) {', '.join(map(repr, sorted(unused)))} match no layer or variable. "
            f"Layer paths: {', '.join(layers[:SHOWN])}. Patterns are {DIALECT}."
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
    """Make ``optimizer`` update each variable with the base rate times its multiplier.

    Decoupled weight decay (``variable -= rate * weight_decay * variable``) follows the
    group's rate too, as it does for torch parameter groups and timm's layer decay.
    """
    by_variable = {id(variable): multipliers[path] for path, variable in variable_paths(model).items()}
    if all(value == 1.0 for value in by_variable.values()):
        return

    def by_scale(*columns: list[Any]) -> dict[float, list[list[Any]]]:
        """Split parallel lists (the last one: variables) into groups by the variables' multiplier."""
        groups: dict[float, list[list[Any]]] = {}
        for row in zip(*columns, strict=True):
            group = groups.setdefault(by_variable.get(id(row[-1]), 1.0), [[] for _ in columns])
            for column, value in zip(group, row, strict=True):
                column.append(value)
        return groups

    update = optimizer._backend_update_step
    decay = optimizer._apply_weight_decay
    # read once: under tf.distribute each replica's thread runs grouped_decay while another has
    # the attribute set to a group's value
    base = optimizer.weight_decay

    def grouped_update(self: Any, grads: list[Any], variables: list[Any], learning_rate: Any) -> None:
        for scale, (group_grads, group_variables) in by_scale(grads, variables).items():
            update(group_grads, group_variables, learning_rate if scale == 1.0 else learning_rate * scale)

    def grouped_decay(self: Any, variables: list[Any]) -> None:
        if not base:
            return decay(variables)
        try:  # every backend's implementation reads the Python float ``weight_decay`` while tracing
            for scale, (group_variables,) in by_scale(variables).items():
                self.weight_decay = base * scale
                decay(group_variables)
        finally:
            self.weight_decay = base

    optimizer._backend_update_step = types.MethodType(grouped_update, optimizer)
    optimizer._apply_weight_decay = types.MethodType(grouped_decay, optimizer)
