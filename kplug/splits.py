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


def _allocate(wanted: int, sizes: list[int]) -> list[int]:
    """Split a count over groups in proportion to their sizes (largest remainder, exact total)."""
    total = sum(sizes)
    shares = [wanted * size / total for size in sizes]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(sizes)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: wanted - sum(counts)]:
        counts[i] += 1
    return counts


def _split_group(
    indices: np.ndarray,
    validation: float,
    test: float,
    n_validation: int | None = None,
    n_test: int | None = None,
) -> tuple[np.ndarray, ...]:
    count = len(indices)
    n_test = int(round(count * test)) if n_test is None else n_test
    n_validation = int(round(count * validation)) if n_validation is None else n_validation
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
        validation: fraction for validation (below 1), or a count of rows.
        test: fraction for test (below 1), or a count of rows.
        seed: the run seed; the same seed always gives the same split.
        strata: one class id per row to keep class proportions in every split,
            or ``None`` for a plain random split.

    Returns:
        ``SplitIndices`` whose parts are disjoint, cover every row and keep the
        rows' original order.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(count)
    counts = validation >= 1 or test >= 1
    n_validation = int(validation) if validation >= 1 else int(round(count * validation))
    n_test = int(test) if test >= 1 else int(round(count * test))
    if strata is None:
        parts = _split_group(
            order, validation, test, n_validation if counts else None, n_test if counts else None
        )
    else:
        groups = [order[strata[order] == value] for value in np.unique(strata)]
        sizes = [len(group) for group in groups]
        validation_counts = _allocate(n_validation, sizes) if counts else [None] * len(groups)
        test_counts = _allocate(n_test, sizes) if counts else [None] * len(groups)
        pieces: list[tuple[np.ndarray, ...]] = []
        for group, n_val, n_tst in zip(groups, validation_counts, test_counts, strict=True):
            pieces.append(_split_group(group, validation, test, n_val, n_tst))
        parts = tuple(np.concatenate([piece[i] for piece in pieces]) for i in range(3))
    # Rows keep their original order inside each split (fit shuffles the training rows itself).
    return SplitIndices(*(np.sort(np.asarray(part, dtype=np.int64)) for part in parts))
