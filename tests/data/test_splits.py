"""Deterministic, stratified splits."""

from __future__ import annotations

import numpy as np

from kplug.data.splits import split_indices


def test_split_is_deterministic_disjoint_and_complete():
    a = split_indices(100, 0.2, 0.1, seed=3)
    b = split_indices(100, 0.2, 0.1, seed=3)
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    everything = np.concatenate([a.train, a.validation, a.test])
    assert sorted(everything.tolist()) == list(range(100))
    assert (len(a.train), len(a.validation), len(a.test)) == (70, 20, 10)
    assert not np.array_equal(split_indices(100, 0.2, 0.1, seed=4).test, a.test)


def test_stratified_split_keeps_class_proportions():
    strata = np.array([0] * 80 + [1] * 20)
    split = split_indices(100, 0.25, 0.0, seed=0, strata=strata)
    assert np.bincount(strata[split.validation]).tolist() == [20, 5]


def counts_per_class(strata: np.ndarray, split) -> list[list[int]]:
    """Rows of each class in train, validation and test."""
    classes = int(strata.max()) + 1
    return [
        np.bincount(strata[part], minlength=classes).tolist()
        for part in (split.train, split.validation, split.test)
    ]


def test_split_by_count_is_exact_and_stratified():
    strata = np.repeat([0, 1, 2], [50, 30, 20])
    split = split_indices(100, validation=10, test=25, seed=4, strata=strata)
    # test: 25 x (0.5, 0.3, 0.2) = 12.5, 7.5, 5 -> the one row left over goes to the first tied class;
    # validation: 10 x (0.5, 0.3, 0.2) = 5, 3, 2
    assert counts_per_class(strata, split) == [[32, 20, 13], [5, 3, 2], [13, 7, 5]]
    again = split_indices(100, validation=10, test=25, seed=4, strata=strata)
    assert np.array_equal(split.test, again.test) and np.array_equal(split.validation, again.validation)


def test_counts_stay_exact_when_classes_are_smaller_than_their_share():
    # one row in each of classes 0-2: the test takes the one of class 0, so class 0 cannot also give
    # its validation row; that row comes from the class with most rows left instead of being lost
    strata = np.array([0, 1, 2, 3, 3, 3, 3, 3])
    split = split_indices(8, validation=2, test=2, seed=0, strata=strata)
    assert (len(split.train), len(split.validation), len(split.test)) == (4, 2, 2)
    assert counts_per_class(strata, split) == [[0, 1, 1, 2], [0, 0, 0, 2], [1, 0, 0, 1]]
