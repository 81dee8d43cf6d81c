"""Read a run's examples through its dataset component, then filter, limit and split them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kplug.config import DataConfig
from kplug.errors import DataError, PluginError
from kplug.examples import Examples
from kplug.registry import Component
from kplug.splits import SplitIndices, split_indices


def read_examples(component: Component, options: dict[str, Any]) -> Examples:
    """Call a dataset component and check that it returned ``Examples``."""
    try:
        examples = component.factory(**options)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        raise DataError(
            f"data: {component.name} could not read {error.filename!r}: {error.strerror}."
        ) from None
    if not isinstance(examples, Examples):
        raise PluginError(
            f"Dataset '{component.name}' ({component.provider}) returned "
            f"{type(examples).__name__}; a dataset factory must return kplug.Examples."
        )
    if len(examples) == 0:
        raise DataError(f"data: {component.name} read no examples (options: {options}).")
    return examples


def merge_examples(parts: dict[str, Examples]) -> Examples:
    """Concatenate the examples of several sources; target ``source`` names each row's source."""
    first_name, first = next(iter(parts.items()))
    for name, part in parts.items():
        if part.features.shape[1:] != first.features.shape[1:]:
            raise DataError(
                f"data.sources: '{name}' has features of shape {part.features.shape[1:]}, "
                f"'{first_name}' {first.features.shape[1:]}; merged sources need the same shape."
            )
        if set(part.targets) != set(first.targets):
            raise DataError(
                f"data.sources: '{name}' has targets {sorted(part.targets)}, '{first_name}' "
                f"{sorted(first.targets)}; merged sources need the same targets."
            )
    names = {
        t: first.label_names[t]
        for t in first.label_names
        if all(p.label_names.get(t) == first.label_names[t] for p in parts.values())
    }
    targets = {t: np.concatenate([p.targets[t] for p in parts.values()]) for t in first.targets}
    targets["source"] = np.concatenate([np.full(len(p), name) for name, p in parts.items()])
    return Examples(np.concatenate([p.features for p in parts.values()]), targets, names)


def _matches(values: np.ndarray, wanted: list[Any]) -> np.ndarray:
    numeric = values.dtype.kind in "iuf" and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) for w in wanted
    )
    if numeric:
        return np.isin(values, np.asarray(wanted))
    return np.isin(values.astype(str), np.asarray([str(w) for w in wanted]))


def select_examples(examples: Examples, config: DataConfig, seed: int) -> Examples:
    """Apply ``data.where`` (keep rows with these target values) and ``data.limit``."""
    keep = np.ones(len(examples), dtype=bool)
    for target, wanted in config.where.items():
        if target not in examples.targets:
            raise DataError(
                f"data.where.{target}: the data has no target '{target}'; "
                f"targets: {', '.join(examples.targets) or 'none'}."
            )
        keep &= _matches(examples.targets[target], wanted)
    if not keep.any():
        raise DataError(f"data.where = {config.where}: no example matches.")
    indices = np.flatnonzero(keep)
    if config.limit is not None and config.limit < len(indices):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=config.limit, replace=False))
    return examples.take(indices)


@dataclass
class SplitExamples:
    """The examples of each split."""

    train: Examples
    validation: Examples
    test: Examples
    indices: SplitIndices


def split_examples(
    examples: Examples, config: DataConfig, seed: int, strata: np.ndarray | None
) -> SplitExamples:
    """Split examples per ``data.split`` with the run seed."""
    split = config.split
    held_out = sum(int(n) for n in (split.validation, split.test) if n >= 1)
    if held_out >= len(examples):
        raise DataError(
            f"data.split holds out {held_out} examples (validation {split.validation:g}, test "
            f"{split.test:g}) but there are only {len(examples)}; leave some for training."
        )
    indices = split_indices(
        len(examples), split.validation, split.test, seed, strata if split.stratify else None
    )
    if len(indices.train) == 0:
        raise DataError(
            f"data.split leaves no training examples out of {len(examples)}; "
            f"lower split.validation / split.test or raise data.limit."
        )
    return SplitExamples(
        examples.take(indices.train),
        examples.take(indices.validation),
        examples.take(indices.test),
        indices,
    )
