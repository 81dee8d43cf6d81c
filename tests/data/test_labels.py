"""Label maps: integer, string, selected and multi-label targets; unknown and out-of-range labels."""

from __future__ import annotations

import numpy as np
import pytest

from kplug.data.labels import LabelMap, build_label_map
from kplug.errors import DataError


def test_integer_labels_keep_their_ids():
    label_map = build_label_map("label", "class", np.array([0, 2, 1, 2]))
    assert label_map.names == ["0", "1", "2"]
    assert label_map.encode(np.array([2, 0])).tolist() == [2, 0]


def test_label_out_of_range_names_the_label_and_the_range():
    with pytest.raises(
        DataError, match=r"Label 7 of target 'label' is out of range: .*\[0, 4\] for 5 classes"
    ):
        build_label_map("label", "class", np.array([0, 7]), num_classes=5)


def test_selected_labels_map_in_their_order():
    label_map = build_label_map("label", "class", np.array([9, 5, 7]), selected=[5, 6, 7, 8, 9])
    assert label_map.names == ["5", "6", "7", "8", "9"]
    assert label_map.encode(np.array([9, 5, 7])).tolist() == [4, 0, 2]


def test_string_labels_are_sorted_and_unknown_ones_refused():
    label_map = build_label_map("label", "class", np.array(["World", "Sports", "World"]))
    assert label_map.names == ["Sports", "World"]
    with pytest.raises(DataError, match=r"Row 1: label 'Business' .* not one of the 2 classes"):
        label_map.encode(np.array(["World", "Business"]))


def test_multi_label_from_separated_strings():
    label_map = build_label_map("tags", "multi_label", np.array(["a|b", "c", ""]))
    assert label_map.names == ["a", "b", "c"]
    assert label_map.encode(np.array(["b|c", "a"])).tolist() == [[0, 1, 1], [1, 0, 0]]


def test_values_become_float_columns_and_maps_round_trip():
    label_map = build_label_map("price", "value", np.array([1, 2]))
    assert label_map.encode(np.array([1.5, 2.0])).shape == (2, 1)
    assert LabelMap.from_dict(label_map.to_dict()) == label_map


def test_float_class_labels():
    whole = build_label_map("label", "class", np.array([1.0, 0.0, 1.0]))
    assert whole.names == ["0", "1"] and whole.encode(np.array([1.0, 0.0])).tolist() == [1, 0]
    fractional = build_label_map("label", "class", np.array([0.5, 2.5, 0.5]))
    assert fractional.names == ["0.5", "2.5"] and fractional.encode(np.array([2.5])).tolist() == [1]
