"""Per-example training weights: ``train.class_weight`` and a weight column (``data.sample_weight``).

Both scale each training example's contribution to the loss, as Keras' ``class_weight`` and
``sample_weight`` do; validation and test metrics stay unweighted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kplug.data.example_set import Examples
from kplug.data.labels import LabelMap
from kplug.errors import ConfigError


def class_weights(setting: dict[Any, float] | str, label_map: LabelMap, head: str) -> np.ndarray:
    """One weight per class id of ``label_map`` from ``train.class_weight``.

    Args:
        setting: ``{label: weight}`` with labels as written in the data (classes left out
            weigh 1), or ``"balanced"``: ``n / (classes * count)``, computed by ``balanced_weights``.
        label_map: the classification head's label map.
        head: the head's id, for messages.

    Raises:
        ConfigError: a label that is not one of the head's classes, naming the classes.
    """
    names = [str(name) for name in label_map.names or []]
    weights = np.ones(len(names), dtype="float32")
    for label, weight in setting.items():
        if str(label) not in names:
            shown = ", ".join(names[:30])
            raise ConfigError(
                f"train.class_weight: {label!r} is not a class of head '{head}'; its classes are {shown}."
            )
        weights[names.index(str(label))] = weight
    return weights


def balanced_weights(class_ids: np.ndarray, classes: int) -> np.ndarray:
    """``n / (classes * count)`` per class id, as scikit-learn's ``balanced`` (absent classes weigh 1)."""
    counts = np.bincount(class_ids, minlength=classes).astype("float64")
    weights = np.ones(classes, dtype="float32")
    present = counts > 0
    weights[present] = len(class_ids) / (classes * counts[present])
    return weights


def example_weights(
    examples: Examples,
    class_weight: dict[Any, float] | str | None,
    sample_weight: str | None,
    heads: list[tuple[str, str]],
    label_maps: dict[str, LabelMap],
) -> np.ndarray | None:
    """Each training example's weight, or ``None`` when the config weighs nothing.

    Args:
        examples: the training split.
        class_weight: ``train.class_weight``.
        sample_weight: ``data.sample_weight``, the name of the target holding the weights.
        heads: ``(head id, target name)`` of each head.
        label_maps: label maps by target name.

    Raises:
        ConfigError: class weights without exactly one classification head, or a weight
            column that is missing, not numeric, negative or not finite.
    """
    weights = None
    if class_weight is not None:
        classified = [(head, target) for head, target in heads if label_maps[target].kind == "class"]
        if len(classified) != 1:
            shown = ", ".join(head for head, _ in classified) or "none"
            raise ConfigError(
                f"train.class_weight applies to the one classification head of a run; this run has "
                f"{len(classified)} ({shown}). Weight examples with data.sample_weight instead."
            )
        head, target = classified[0]
        label_map = label_maps[target]
        ids = label_map.encode(examples.targets[target])
        if class_weight == "balanced":
            per_class = balanced_weights(ids, label_map.num_classes or 0)
        else:
            per_class = class_weights(class_weight, label_map, head)
        weights = per_class[ids]
    if sample_weight is not None:
        column = _weight_column(examples, sample_weight)
        weights = column if weights is None else weights * column
    return weights


def _weight_column(examples: Examples, name: str) -> np.ndarray:
    if name not in examples.targets:
        shown = ", ".join(examples.targets) or "none"
        raise ConfigError(
            f"data.sample_weight = {name!r}: the data has no such column; its targets are {shown} "
            f"(a csv/tsv source reads extra columns with options.targets, arrays with options.targets)."
        )
    try:
        values = np.asarray(examples.targets[name], dtype="float32")
    except ValueError:
        raise ConfigError(
            f"data.sample_weight = {name!r}: the column holds values that are not numbers."
        ) from None
    if values.ndim != 1 or not np.isfinite(values).all() or (values < 0).any():
        raise ConfigError(
            f"data.sample_weight = {name!r}: weights must be one finite, non-negative number per example."
        )
    return values


def stream_class_weight(
    class_weight: dict[Any, float] | str | None, run: Any, data: Any
) -> dict[Any, float] | None:
    """``train.class_weight`` for a stream, weighed batch by batch: ``balanced`` resolved once from
    the counts of the scanned targets into ``{label: weight}``."""
    if class_weight != "balanced":
        return class_weight
    heads = [(head.config.output_name, head.config.target) for head in run.heads]
    classified = [target for _, target in heads if data.label_maps[target].kind == "class"]
    if len(classified) != 1:
        return class_weight  # example_weights reports it with the head names
    label_map = data.label_maps[classified[0]]
    ids = label_map.encode(data.splits.train.targets[classified[0]])
    weights = balanced_weights(ids, label_map.num_classes or 0)
    return {name: float(w) for name, w in zip(label_map.names or [], weights, strict=False)}
