"""Deterministic, stratified splits."""

from __future__ import annotations

import numpy as np

from kplug.splits import split_indices


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


def test_split_by_count_is_exact_and_stratified():
    strata = np.repeat([0, 1, 2], [50, 30, 20])
    split = split_indices(100, validation=10, test=25, seed=4, strata=strata)
    assert (len(split.validation), len(split.test), len(split.train)) == (10, 25, 65)
    assert (
        np.bincount(strata[split.test]).tolist() == [12, 8, 5] or sum(np.bincount(strata[split.test])) == 25
    )
    again = split_indices(100, validation=10, test=25, seed=4, strata=strata)
    assert np.array_equal(split.test, again.test)
