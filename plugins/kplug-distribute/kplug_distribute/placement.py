"""What the jax, tensorflow and torch distributions share: each process's batches and the report entry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import kplug
from kplug.plugin import sharding_table

from kplug_distribute.batches import ProcessShard
from kplug_distribute.batchnorm import GLOBAL, has_batchnorm


def process_share(distribution: kplug.Distribution, batches: Any) -> Any:
    """``distribution``'s process's contiguous slice of every global batch (all of it in one process).

    Args:
        distribution: gives ``rank`` and ``processes``.
        batches: the global ``(x, y[, sample_weight])`` batches in the run's order.
    """
    if distribution.processes == 1:
        return batches
    return ProcessShard(batches, distribution.rank, distribution.processes)


def describe_placement(
    distribution: kplug.Distribution,
    model: keras.Model | None,
    details: dict[str, Any],
    variables: Callable[[keras.Model], dict[str, str]] | None = sharding_table,
) -> dict[str, Any]:
    """The ``report.json`` entry of ``distribution``.

    Args:
        distribution: gives ``strategy`` (its name), ``replicas`` and ``processes``.
        model: the trained model, or ``None`` (``kplug doctor``).
        details: the entries that follow, in order (``devices``, ``visible_devices``, ...).
        variables: how each variable of ``model`` is placed (``None``: not recorded).

    Returns:
        ``strategy``, ``replicas``, ``processes``, then ``details``, ``variables`` when there is a
        model and ``batchnorm_statistics`` when the model has BatchNormalization layers.
    """
    placement = {
        "strategy": distribution.name,
        "replicas": distribution.replicas,
        "processes": distribution.processes,
        **details,
    }
    if model is not None and variables is not None:
        placement["variables"] = variables(model)
    if has_batchnorm(model):
        placement["batchnorm_statistics"] = GLOBAL
    return placement
