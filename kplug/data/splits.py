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
    """Split a count over groups in proportion to their sizes (largest remainder, exact total).

    Ties go to the earlier group. No group gets more than its size.
    """
    total = sum(sizes)
    wanted = min(wanted, total)
    if wanted == 0:
        return [0] * len(sizes)
    shares = [wanted * size / total for size in sizes]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(sizes)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: wanted - sum(counts)]:
        counts[i] += 1
    return counts


def _within(counts: list[int], room: list[int]) -> list[int]:
    """``counts`` with none above its ``room``; what a group cannot give comes from those with most room."""
    capped = [min(count, space) for count, space in zip(counts, room, strict=True)]
    for _ in range(min(sum(counts), sum(room)) - sum(capped)):
        most = max(range(len(room)), key=lambda i: room[i] - capped[i])
        capped[most] += 1
    return capped


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
    n_validation = int(validation) if validation >= 1 else int(round(count * validation))
    n_test = int(test) if test >= 1 else int(round(count * test))
    groups = [order] if strata is None else [order[strata[order] == value] for value in np.unique(strata)]
    sizes = [len(group) for group in groups]
    if strata is None or validation >= 1 or test >= 1:  # exact sizes, shared out over the classes
        test_counts = _allocate(n_test, sizes)
        left = [size - n for size, n in zip(sizes, test_counts, strict=True)]
        validation_counts = _within(_allocate(n_validation, sizes), left)
    else:  # fractions of each class
        test_counts = [int(round(size * test)) for size in sizes]
        validation_counts = [int(round(size * validation)) for size in sizes]
    pieces = [
        (group[n_tst + n_val :], group[n_tst : n_tst + n_val], group[:n_tst])
        for group, n_val, n_tst in zip(groups, validation_counts, test_counts, strict=True)
    ]
    parts = tuple(np.concatenate([piece[i] for piece in pieces]) for i in range(3))
    # Rows keep their original order inside each split (fit shuffles the training rows itself).
    return SplitIndices(*(np.sort(np.asarray(part, dtype=np.int64)) for part in parts))
