"""Prediction records: flat fields, labels typed as in the data, JSON lines or CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import kplug
from kplug.data.labels import LabelMap
from kplug.inference.records import flat_records, format_records, head_fields, output_format, with_truth

LOGITS = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
PROBABILITIES = np.array([[0.7, 0.1, 0.2], [0.05, 0.9, 0.05]])


def class_fields(label_map, truth=None):
    fields = head_fields(label_map, LOGITS, PROBABILITIES, PROBABILITIES.argmax(axis=1))
    return with_truth(fields, label_map, truth)


def test_integer_labels_stay_integers_and_string_labels_strings():
    ints = LabelMap("label", "class", ["5", "6", "7"], [5, 6, 7])
    fields = class_fields(ints, np.array([7, 6], dtype="int64"))
    assert fields["label"] == [5, 6] and fields["true_label"] == [7, 6]
    assert all(type(v) is int for v in fields["label"] + fields["true_label"])
    strings = LabelMap("label", "class", ["cat", "dog", "eel"], ["cat", "dog", "eel"])
    fields = class_fields(strings, np.array(["dog", "owl"]))
    assert fields["label"] == ["cat", "dog"] and fields["true_label"] == ["dog", "owl"]  # unknown: as written
    assert "label_name" not in fields


def test_named_integer_classes_also_give_the_name():
    named = LabelMap("label", "class", ["cat", "dog", "eel"], [0, 1, 2])
    fields = class_fields(named, np.array([1.0, 1.0]))  # 1.0 in a float column is class 1
    assert (
        fields["label"] == [0, 1]
        and fields["label_name"] == ["cat", "dog"]
        and fields["true_label"] == [1, 1]
    )


def test_one_head_is_flat_and_several_are_prefixed():
    ints = LabelMap("label", "class", ["0", "1", "2"], [0, 1, 2])
    one = flat_records([4, 9], {"label": class_fields(ints)})
    assert list(one[0]) == ["index", "label", "label_id", "probabilities", "logits"]
    assert one[1]["index"] == 9 and one[1]["label"] == 1 and one[1]["probabilities"] == [0.05, 0.9, 0.05]
    value = LabelMap("size", "value")
    size = with_truth(
        head_fields(value, LOGITS[:, :1], LOGITS[:, :1], LOGITS[:, :1]), value, np.array([1.5, 2.5])
    )
    two = flat_records([4, 9], {"digits": class_fields(ints, np.array([0, 2])), "size": size})
    assert list(two[0]) == [
        "index",
        "digits.label",
        "digits.true_label",
        "digits.label_id",
        "digits.probabilities",
        "digits.logits",
        "size.value",
        "size.true_value",
        "size.logits",
    ]
    assert two[1]["digits.true_label"] == 2 and two[1]["size.true_value"] == 2.5


def test_multi_label_fields_are_lists_of_names():
    tags = LabelMap("tags", "multi_label", ["a", "b", "c"], ["a", "b", "c"])
    decided = np.array([[1, 0, 1], [0, 0, 0]])
    fields = with_truth(head_fields(tags, LOGITS, PROBABILITIES, decided), tags, np.array(["a|c", "b"]))
    assert fields["label"] == [["a", "c"], []] and fields["label_id"] == [[0, 2], []]
    assert fields["true_label"] == [["a", "c"], ["b"]]


def test_jsonl_and_csv_hold_the_same_records():
    ints = LabelMap("label", "class", ["0", "1", "2"], [0, 1, 2])
    records = flat_records([0, 1], {"label": class_fields(ints, np.array([0, 2]))})
    assert [json.loads(line) for line in format_records(records, "jsonl").splitlines()] == records
    rows = list(csv.DictReader(io.StringIO(format_records(records, "csv"))))
    assert list(rows[0]) == ["index", "label", "true_label", "label_id", "probabilities", "logits"]
    assert rows[1]["label"] == "1" and rows[1]["true_label"] == "2"
    assert json.loads(rows[1]["probabilities"]) == [0.05, 0.9, 0.05]  # a list is one JSON cell


def test_the_format_comes_from_the_flag_or_the_extension():
    assert output_format(None, None) == "jsonl"
    assert output_format(None, "preds.csv") == "csv"
    assert output_format(None, "preds.CSV") == "csv"
    assert output_format(None, "preds.jsonl") == "jsonl"
    assert output_format(None, "preds.txt") == "jsonl"
    assert output_format("jsonl", "preds.csv") == "jsonl"
    with pytest.raises(kplug.ConfigError, match="--format 'xml'.*jsonl, csv"):
        output_format("xml", None)
