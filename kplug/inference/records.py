"""Prediction records: one flat dict per example, written as JSON lines or CSV.

A record has the example's ``index`` and one key per head field: ``label``, ``label_id``,
``probabilities`` and ``logits`` for a classification head (``value`` and ``logits`` for a
regression head), plus ``true_label`` (``true_value``) when the data has that head's target. With
several heads each field is prefixed with the head id: ``digits59.label``,
``digits59.probabilities``. Labels are typed as in the data: integer class labels stay
integers, string labels strings.

Example::

    {"index": 12, "label": 7, "true_label": 7, "label_id": 2, "probabilities": [...], "logits": [...]}
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from kplug.data.labels import MULTI_LABEL_SEPARATOR, LabelMap
from kplug.errors import ConfigError

FORMATS = ("jsonl", "csv")


def plain(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars and arrays become ints, floats, strings and lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _label_key(value: Any) -> str:
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    ):
        return str(int(value))
    return str(value)


def class_labels(label_map: LabelMap) -> list[Any]:
    """Each class id's label as written in the data (``raw``), e.g. ``[5, 6, 7]`` or ``["cat", "dog"]``."""
    return [plain(value) for value in (label_map.raw or label_map.names or [])]


def has_names(label_map: LabelMap) -> bool:
    """Whether the class names say more than the labels themselves (a source that names int classes)."""
    return label_map.names is not None and [str(v) for v in class_labels(label_map)] != list(label_map.names)


def true_labels(label_map: LabelMap, values: np.ndarray) -> list[Any]:
    """The data's labels of one target, typed like the predicted ``label`` (unknown labels as they are)."""
    if label_map.kind == "value":
        return [plain(v) for v in values]
    if label_map.kind == "multi_label":
        names = label_map.names or []
        if np.ndim(values) == 2:
            return [[names[i] for i in np.flatnonzero(row)] for row in values]
        return [[p.strip() for p in str(v).split(MULTI_LABEL_SEPARATOR) if p.strip()] for v in values]
    known = {_label_key(label): label for label in class_labels(label_map)}
    return [known.get(_label_key(v), plain(v)) for v in values]


def head_fields(
    label_map: LabelMap, logits: np.ndarray, probabilities: np.ndarray, decided: np.ndarray
) -> dict[str, list[Any]]:
    """One head's fields, each a list with one value per example."""
    if label_map.kind == "value":
        return {"value": logits.tolist(), "logits": logits.tolist()}
    labels = class_labels(label_map)
    if label_map.kind == "multi_label":
        ids = [np.flatnonzero(row).tolist() for row in decided]
        fields: dict[str, list[Any]] = {"label": [[labels[i] for i in row] for row in ids], "label_id": ids}
    else:
        ids = decided.tolist()
        fields = {"label": [labels[i] for i in ids], "label_id": ids}
        if has_names(label_map):
            fields["label_name"] = [label_map.names[i] for i in ids]
    fields["probabilities"] = probabilities.tolist()
    fields["logits"] = logits.tolist()
    return fields


def with_truth(
    fields: dict[str, list[Any]], label_map: LabelMap, values: np.ndarray | None
) -> dict[str, list[Any]]:
    """``fields`` with ``true_label`` (``true_value``) after the prediction, when the data has the target."""
    if values is None:
        return fields
    key = "true_value" if label_map.kind == "value" else "true_label"
    first = next(iter(fields))
    ordered = {first: fields[first], key: true_labels(label_map, values)}
    ordered.update({name: column for name, column in fields.items() if name != first})
    return ordered


def flat_records(indices: list[int], per_head: dict[str, dict[str, list[Any]]]) -> list[dict[str, Any]]:
    """One flat record per example; field names are prefixed with the head id when there are several heads."""
    prefix = len(per_head) > 1
    records = []
    for position, index in enumerate(indices):
        record: dict[str, Any] = {"index": index}
        for head_id, fields in per_head.items():
            for name, column in fields.items():
                record[f"{head_id}.{name}" if prefix else name] = column[position]
        records.append(record)
    return records


def output_format(chosen: str | None, output: str | Path | None) -> str:
    """``--format``, or the one the ``--output`` extension names (``.csv``), else ``jsonl``."""
    if chosen is not None:
        if chosen not in FORMATS:
            raise ConfigError(
                f"--format {chosen!r}: not a prediction format; use one of {', '.join(FORMATS)}."
            )
        return chosen
    if output is not None and Path(output).suffix.lower() == ".csv":
        return "csv"
    return "jsonl"


def _csv_cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def format_records(records: list[dict[str, Any]], fmt: str) -> str:
    """Records as JSON lines, or as CSV with one column per field (lists as JSON text)."""
    if fmt == "jsonl":
        return "".join(json.dumps(record) + "\n" for record in records)
    columns: list[str] = []
    for record in records:
        columns += [key for key in record if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _csv_cell(value) for key, value in record.items()})
    return buffer.getvalue()
