"""Map raw target values (ints, strings, multi-hot rows, numbers) to what heads learn.

The mapping is saved in the run directory (``labels.json``) so that evaluation and
prediction on new files use exactly the ids the model was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kplug.errors import DataError

MULTI_LABEL_SEPARATOR = "|"
KINDS = ("class", "multi_label", "value")


@dataclass
class LabelMap:
    """How one target's raw values become head targets.

    Attributes:
        target: the target's name.
        kind: ``"class"``, ``"multi_label"`` or ``"value"``.
        names: class names in id order (``None`` for values).
        raw: the raw value of each class id as written in the data (for encoding).
    """

    target: str
    kind: str
    names: list[str] | None = None
    raw: list[Any] | None = None

    @property
    def num_classes(self) -> int | None:
        """Number of classes, or ``None`` for real-valued targets."""
        return len(self.names) if self.names is not None else None

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Turn raw values into head targets, refusing labels the map does not know."""
        if self.kind == "value":
            array = np.asarray(values, dtype="float32")
            return array.reshape(-1, 1) if array.ndim == 1 else array
        if self.kind == "multi_label":
            return self._encode_multi_label(values)
        lookup = {_key(raw): index for index, raw in enumerate(self.raw or [])}
        ids = np.empty(len(values), dtype="int32")
        for row, value in enumerate(values):
            key = _key(value)
            if key not in lookup:
                shown = ", ".join(str(v) for v in (self.raw or [])[:20])
                plain = value.item() if isinstance(value, np.generic) else value
                raise DataError(
                    f"Row {row}: label {plain!r} of target '{self.target}' is not one of the "
                    f"{len(lookup)} classes the model knows ({shown})."
                )
            ids[row] = lookup[key]
        return ids

    def _encode_multi_label(self, values: np.ndarray) -> np.ndarray:
        count = len(self.names or [])
        if values.ndim == 2:
            if values.shape[1] != count:
                raise DataError(
                    f"Target '{self.target}' has {values.shape[1]} columns per row; "
                    f"the model expects {count} (one 0/1 column per label)."
                )
            return np.asarray(values, dtype="float32")
        index = {name: i for i, name in enumerate(self.names or [])}
        encoded = np.zeros((len(values), count), dtype="float32")
        for row, value in enumerate(values):
            for name in _split_labels(value):
                if name not in index:
                    raise DataError(
                        f"Row {row}: label {name!r} of target '{self.target}' is not one of "
                        f"the known labels ({', '.join(self.names or [])})."
                    )
                encoded[row, index[name]] = 1.0
        return encoded

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for ``labels.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelMap:
        """Inverse of ``to_dict``.

        Raises:
            ValueError: the dict is not a label map (wrong keys, kind or lengths).
        """
        if not isinstance(data, dict) or set(data) != {"target", "kind", "names", "raw"}:
            raise ValueError("each entry needs exactly the keys target, kind, names, raw")
        if data["kind"] not in KINDS:
            raise ValueError(f"kind {data['kind']!r} is not one of {', '.join(KINDS)}")
        if data["kind"] != "value":
            names, raw = data["names"], data["raw"]
            if (
                not isinstance(names, list)
                or not isinstance(raw, list)
                or len(names) != len(raw)
                or not names
            ):
                raise ValueError(
                    f"target {data['target']!r} needs equally long, non-empty names and raw lists"
                )
        return cls(**data)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _key(value: Any) -> str:
    if isinstance(value, (np.integer, int)) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return str(value)


def _split_labels(value: Any) -> list[str]:
    return [part.strip() for part in str(value).split(MULTI_LABEL_SEPARATOR) if part.strip()]


def build_label_map(
    target: str,
    kind: str,
    values: np.ndarray,
    known_names: list[str] | None = None,
    selected: list[Any] | None = None,
    num_classes: int | None = None,
) -> LabelMap:
    """Build the label map of one target from its training values.

    Args:
        target: target name.
        kind: the head's ``target_kind``.
        values: raw values of every example.
        known_names: class names in id order, when the data source knows them.
        selected: the ``data.where`` values kept for this target; ids follow their order.
        num_classes: the head's ``num_classes`` option, when the user set it.

    Raises:
        DataError: integer labels outside ``[0, num_classes)``.
    """
    if kind == "value":
        if values.dtype.kind not in "iufb":
            bad = next((v for v in values if not _is_number(v)), values[0])
            raise DataError(
                f"Target '{target}' must hold numbers for a regression head; "
                f"found {bad.item() if isinstance(bad, np.generic) else bad!r}."
            )
        return LabelMap(target, kind)
    if kind == "multi_label":
        if values.ndim == 2:
            names = known_names or [str(i) for i in range(values.shape[1])]
        else:
            names = known_names or sorted({n for v in values for n in _split_labels(v)})
        return LabelMap(target, kind, list(names), list(names))
    if values.ndim != 1:
        raise DataError(
            f"Target '{target}' has shape {tuple(values.shape[1:])} per example; a classification head needs one "
            f"label per example (a 1-D array of class ids or names). For one 0/1 column per label use "
            f"a multi-label head; for vectors of numbers, a regression head."
        )
    if selected:
        raw = list(selected)
        return LabelMap(target, kind, [str(v) for v in raw], raw)
    if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        values = values.astype("int64")  # 0.0 / 1.0 class labels are the integers 0 / 1
    if values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
        count = num_classes or (len(known_names) if known_names else high + 1)
        if low < 0 or high >= count:
            bad = low if low < 0 else high
            raise DataError(
                f"Label {bad} of target '{target}' is out of range: labels must be integers "
                f"in [0, {count - 1}] for {count} classes. Set the head's num_classes, or keep "
                f"a subset with data.where (ids then follow its order)."
            )
        names = known_names[:count] if known_names else [str(i) for i in range(count)]
        return LabelMap(target, kind, names, list(range(count)))
    if known_names:
        return LabelMap(target, kind, list(known_names), list(known_names))
    raw = sorted(np.unique(values).tolist())
    return LabelMap(target, kind, [str(v) for v in raw], raw)
