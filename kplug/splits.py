"""Deterministic, optionally stratified train / validation / test splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SplitIndices:
    """Row indices of each split."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _split_group(indices: np.ndarray, validation: float, test: float) -> tuple[np.ndarray, ...]:
    count = len(indices)
    n_test = int(round(count * test))
    n_validation = int(round(count * validation))
    return (
        indices[n_test + n_validation :],
        indices[n_test : n_test + n_validation],
        indices[:n_test],
    )


def split_indices(
    count: int,
    validation: float,
    test: float,
    seed: int,
    strata: np.ndarray | None = None,
) -> SplitIndices:
    """Split ``count`` rows with a seeded shuffle.

    Args:
        count: number of rows.
        validation: fraction for validation.
        test: fraction for test.
        seed: the run seed; the same seed always gives the same split.
        strata: one class id per row to keep class proportions in every split,
            or ``None`` for a plain random split.

    Returns:
        ``SplitIndices`` whose parts are disjoint, cover every row and keep the
        rows' original order.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    if strata is None:
        parts = _split_group(order, validation, test)
    else:
        pieces: list[tuple[np.ndarray, ...]] = []
        for value in np.unique(strata):
            pieces.append(_split_group(order[strata[order] == value], validation, test))
        parts = tuple(np.concatenate([piece[i] for piece in pieces]) for i in range(3))
    # Rows keep their original order inside each split (fit shuffles the training rows itself).
    return SplitIndices(*(np.sort(np.asarray(part, dtype=np.int64)) for part in parts))
