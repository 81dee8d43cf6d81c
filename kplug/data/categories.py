"""One-hot encoding of categorical (string) feature columns, with categories a run keeps.

A table's string column ``color`` with values ``red``, ``blue`` becomes the 0/1 columns
``color=blue``, ``color=red`` (categories sorted). The categories a run was trained with are
saved as plain JSON in its run directory (``categories.json``) and given back to the data
source when ``kplug predict`` / ``kplug evaluate`` read new data, so the same value always
lands in the same column. A value the run never saw is an error naming the column, the value
and the known categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kplug.errors import DataError

# column name -> its categories, in one-hot column order
Categories = dict[str, list[str]]


def is_categorical(values: np.ndarray) -> bool:
    """Whether a column holds text (strings or Python objects) rather than numbers or booleans."""
    return values.dtype.kind in "USO"


def column_categories(name: str, values: np.ndarray, where: str) -> list[str]:
    """The sorted categories of a string column.

    Raises:
        DataError: a cell is missing (``None`` / NaN) or not a string.
    """
    _check_cells(name, values, where)
    return sorted({str(v) for v in values.tolist()})


def one_hot(name: str, values: np.ndarray, categories: Sequence[str], where: str) -> np.ndarray:
    """``values`` as float32 0/1 columns, one per category, in the order of ``categories``.

    Raises:
        DataError: a value is not one of ``categories`` (data the run never saw).
    """
    _check_cells(name, values, where)
    position = {category: index for index, category in enumerate(categories)}
    codes = np.fromiter((position.get(str(v), -1) for v in values.tolist()), dtype="int64", count=len(values))
    if (codes < 0).any():
        row = int(np.flatnonzero(codes < 0)[0])
        shown = ", ".join(map(repr, categories[:20])) + (", ..." if len(categories) > 20 else "")
        raise DataError(
            f"{where}: column {name!r} holds {str(values[row])!r} (row {row}), a category the run was not "
            f"trained with; known categories: {shown}. Map it to one of them or drop the row."
        )
    encoded = np.zeros((len(values), len(categories)), dtype="float32")
    encoded[np.arange(len(values)), codes] = 1.0
    return encoded


def encode_columns(
    columns: dict[str, np.ndarray], known: Categories | None, where: str
) -> tuple[np.ndarray, Categories]:
    """Feature columns as one float32 matrix: numeric columns as they are, string columns one-hot.

    Args:
        columns: feature column name -> its values, in feature order.
        known: the categories to use (a trained run's); ``None`` builds them from ``columns``.
        where: the config field, for messages.

    Returns:
        The feature matrix and the categories of every string column.
    """
    known = known or {}
    parts, categories = [], {}
    for name, values in columns.items():
        if is_categorical(values) or name in known:
            categories[name] = list(known[name]) if name in known else column_categories(name, values, where)
            parts.append(one_hot(name, values, categories[name], where))
            continue
        try:
            numbers = values.astype("float32")
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: column {name!r} ({values.dtype}) is neither numbers nor text."
            ) from None
        if not np.isfinite(numbers).all():
            row = int(np.flatnonzero(~np.isfinite(numbers))[0])
            raise DataError(
                f"{where}: column {name!r} holds {values[row]!r} on row {row}; feature columns must be "
                f"finite numbers or text (no missing values). Fill or drop those rows."
            )
        parts.append(numbers[:, None])
    return np.concatenate(parts, axis=1), categories


def _check_cells(name: str, values: np.ndarray, where: str) -> None:
    for row, value in enumerate(values.tolist()):
        if not isinstance(value, str):
            missing = value is None or (isinstance(value, float) and np.isnan(value))
            what = "a missing value" if missing else f"{type(value).__name__} {value!r}"
            raise DataError(
                f"{where}: text column {name!r} holds {what} on row {row}; every cell of a text "
                f"(categorical) column must be a string. Fill or drop those rows."
            )


def as_categories(value: Any, where: str) -> Categories:
    """Check a ``{column: [category, ...]}`` mapping (e.g. read back from ``categories.json``)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(c, str) for c in v)
        for k, v in value.items()
    ):
        raise DataError(f"{where}: expected {{column: [category, ...]}}; got {value!r:.80}.")
    return value
