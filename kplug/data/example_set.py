"""``Examples``: what a data source returns — features and raw targets, one row per example."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kplug.errors import DataError


@dataclass
class Examples:
    """Features and targets of a set of examples.

    Attributes:
        features: array with one row per example (images, vectors, token ids, ...).
        targets: raw target values by target name (``"label"`` by default); class
            labels may be integers or strings, kplug maps them to ids.
        label_names: optional ordered class names per target, when the source
            knows them (ids index into it).
        rows: each example's row number in what the source read (set by kplug when it
            selects and splits; sources leave it out).
        categories: the categories of each one-hot encoded text feature column, in column
            order, when the source encoded some (``kplug.data.categories``); kplug saves them
            in the run directory and gives them back as the source's ``categories`` option.
    """

    features: np.ndarray
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    label_names: dict[str, list[str]] = field(default_factory=dict)
    rows: np.ndarray | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if np.ndim(self.features) == 0:
            raise DataError(
                f"Features must be an array with one row per example (a numpy array or a list of rows); "
                f"got {_kind(self.features)}."
            )
        rows = len(self.features)
        for name, values in self.targets.items():
            if len(values) != rows:
                raise DataError(
                    f"Target '{name}' has {len(values)} rows but the features have {rows}; "
                    f"every example needs exactly one target row."
                )

    def __len__(self) -> int:
        return len(self.features)

    def take(self, indices: np.ndarray) -> Examples:
        """The examples at ``indices``, in that order."""
        return Examples(
            self.features[indices],
            {name: values[indices] for name, values in self.targets.items()},
            dict(self.label_names),
            self.row_numbers()[indices],
            self.categories,
        )

    def row_numbers(self) -> np.ndarray:
        """Each example's row number in the source's data."""
        return self.rows if self.rows is not None else np.arange(len(self))


def _kind(value: object) -> str:
    """What a value is, for messages: its type, and the type of the object a 0-d array wraps."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        item = value.item()
        if value.dtype == object:
            return f"an object array holding {type(item).__name__}"
        return f"the single value {str(item)[:40]!r}"
    return type(value).__name__
