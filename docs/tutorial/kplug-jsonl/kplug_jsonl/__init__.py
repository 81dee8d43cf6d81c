"""kplug-jsonl: read examples from JSON Lines files, and drop features at random while training.

Installed, kplug finds this module through the ``kplug`` entry point in ``pyproject.toml``;
run configs then name its components: ``source: jsonl`` and ``augment: [{name: feature-dropout}]``.
"""

from __future__ import annotations

import json
from typing import Annotated

import keras
import kplug
import numpy as np
from pydantic import Field


# --8<-- [start:source]
def read_jsonl(path: str, features: str = "features", label: str = "label") -> kplug.Examples:
    """Read one example per line: ``{"features": [0.1, 0.2], "label": "cat"}``.

    Args:
        path: the JSON Lines file.
        features: the key holding the list of numbers of each example.
        label: the key holding its label (a class name or number); a file without it
            (new data to predict on) reads without targets.
    """
    rows, labels = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                rows.append([float(value) for value in record[features]])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                raise kplug.DataError(
                    f"{path}, line {number}: expected a JSON object with a list of numbers "
                    f"under {features!r} ({type(error).__name__}: {error})."
                ) from None
            if label in record:
                labels.append(record[label])
    if not rows:
        raise kplug.DataError(f"{path}: no examples.")
    if labels and len(labels) != len(rows):
        raise kplug.DataError(f"{path}: {len(rows) - len(labels)} lines have no {label!r}.")
    targets = {"label": np.asarray(labels)} if labels else {}
    return kplug.Examples(np.asarray(rows, dtype="float32"), targets)


# --8<-- [end:source]


# --8<-- [start:augmentation]
def feature_dropout(rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1) -> keras.layers.Layer:
    """Zero a random fraction ``rate`` of the input features while training."""
    return keras.layers.Dropout(rate, name="feature_dropout")


# --8<-- [end:augmentation]


# --8<-- [start:hooks]
@kplug.hookimpl
def kplug_register_datasets(register):
    """Register the ``jsonl`` data source."""
    register("jsonl", read_jsonl, path_option="path")


@kplug.hookimpl
def kplug_register_augmentations(register):
    """Register the ``feature-dropout`` augmentation."""
    register("feature-dropout", feature_dropout)


# --8<-- [end:hooks]
