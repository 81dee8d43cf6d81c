"""The built-in ``dataframe`` source: a pandas DataFrame from Python (or a CSV file read by pandas).

String (categorical) feature columns are one-hot encoded (``kplug.data.categories``); the
categories are saved in the run directory so predictions on a later frame or CSV use the
same columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kplug.data.categories import Categories, encode_columns
from kplug.data.example_set import Examples
from kplug.errors import DataError
from kplug.plugin.manager import hookimpl

WHERE = "data.options"


def _is_frame(value: Any) -> bool:
    """A pandas DataFrame, recognised by its interface (pandas is imported only to read files)."""
    return hasattr(value, "columns") and hasattr(value, "iloc") and hasattr(value, "to_numpy")


def _as_frame(frame: Any) -> Any:
    if _is_frame(frame):
        return frame
    if isinstance(frame, str) and frame.endswith("from Python>"):
        raise DataError(
            f"{WHERE}.frame: the run was trained on a DataFrame from Python, which its run directory "
            f"does not keep; pass a frame (kplug.predict(run_dir, data=frame)) or a CSV file."
        )
    if isinstance(frame, str):
        try:
            import pandas as pd
        except ImportError:
            raise DataError(
                f"{WHERE}.frame = {frame!r}: reading a file needs pandas (pip install 'kplug[pandas]')."
            ) from None
        return pd.read_csv(frame)  # FileNotFoundError is reported by kplug with the file name
    raise DataError(
        f"{WHERE}.frame: expected a pandas DataFrame or the path of a CSV file; got {type(frame).__name__}."
    )


def _columns(frame: Any, names: list[str], option: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise DataError(
            f"{WHERE}.{option}: the frame has no column {missing[0]!r}; columns: "
            f"{', '.join(map(str, frame.columns))}."
        )


def dataframe(
    frame: Any,
    label: str | None = "label",
    features: list[str] | None = None,
    targets: list[str] | None = None,
    categories: dict[str, list[str]] | None = None,
) -> Examples:
    """A pandas DataFrame: feature columns and target columns by name.

    Args:
        frame: a ``pandas.DataFrame``, or the path of a CSV file (read with ``pandas.read_csv``).
        label: the column read as the target ``label`` (left out when the frame lacks it, as
            new data to predict on does).
        features: the feature columns, in order; default every column that is not a target.
        targets: further target columns, each a target of its own name (absent ones left out).
        categories: the one-hot categories of string feature columns; kplug passes the
            trained run's (``categories.json``) when reading new data.

    String feature columns become one 0/1 column per category (sorted); numeric and boolean
    columns are used as they are.
    """
    frame = _as_frame(frame)
    label_column = label if label is not None and label in frame.columns else None
    extra = [name for name in targets or [] if name in frame.columns]
    target_columns = [c for c in (label_column, *extra) if c is not None]
    if features is None:
        features = [c for c in frame.columns if c not in target_columns]
    _columns(frame, features, "features")
    overlap = sorted(set(features) & set(target_columns))
    if overlap:
        raise DataError(
            f"{WHERE}.features: column {overlap[0]!r} is also a target; a column is one or the other."
        )
    if not features:
        raise DataError(
            f"{WHERE}.features: no feature columns left (columns: {', '.join(map(str, frame.columns))})."
        )
    if len(frame) == 0:
        raise DataError(f"{WHERE}.frame: the frame has no rows.")
    found: Categories
    matrix, found = encode_columns({name: frame[name].to_numpy() for name in features}, categories, WHERE)
    found_targets = {name: _values(frame[name]) for name in extra}
    if label_column is not None:
        found_targets["label"] = _values(frame[label_column])
    return Examples(matrix, found_targets, categories=found)


def _values(column: Any) -> np.ndarray:
    """A target column as numpy: text as a str array (pandas keeps it as objects)."""
    values = column.to_numpy()
    return np.asarray(values.tolist()) if values.dtype == object else values


@hookimpl
def kplug_register_datasets(register):
    """Register the ``dataframe`` source."""
    register("dataframe", dataframe, path_option="frame", in_memory=True)
