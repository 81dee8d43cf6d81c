"""Batches padded to a multiple of the replica count, with zero-weight rows, so metrics stay exact.

Data parallelism splits every batch evenly over the replicas; a split whose last batch
does not divide (106 examples in batches of 32 leave 10, over 4 replicas) gets that batch
padded with copies of its last row that carry sample weight 0. Keras' ``sum_over_batch_size``
losses divide by the padded row count, so the real rows are weighed up to compensate:

- a training batch of ``r`` real rows padded to ``p``: each real row weighs ``p / r``, so
  the batch's loss, and its gradient, are those of the ``r`` rows alone;
- an evaluation over ``n`` real rows padded to ``N`` in all: each real row weighs
  ``N / n``, so the loss Keras averages over batches (weighing each by its row count) and
  every weighted-mean metric equal those of the unpadded evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from kplug.data.batches import num_rows, pad_batch, padded_rows, take


class EvaluationBatches(keras.utils.PyDataset):
    """``(x, y, sample_weight)`` batches of an evaluation split, every batch a multiple of ``multiple``.

    Args:
        x: model inputs (an array, or a dict of arrays by input name).
        y: targets (an array, or a dict of arrays by head id).
        batch_size: examples per batch (a multiple of ``multiple``).
        multiple: the replica count every batch must split into.
    """

    def __init__(self, x: Any, y: Any, batch_size: int, multiple: int) -> None:
        super().__init__()
        self.x, self.y = x, y
        self.size = num_rows(x)
        self.batch_size = batch_size
        self.multiple = multiple
        last = self.num_batches - 1
        padded = last * batch_size + padded_rows(self._real_rows(last), multiple)
        self.weight = padded / self.size  # real rows weigh up for the padding (module docstring)

    @property
    def num_batches(self) -> int:
        """Batches in the split."""
        return math.ceil(self.size / self.batch_size)

    def _real_rows(self, index: int) -> int:
        return min(self.batch_size, self.size - index * self.batch_size)

    def __getitem__(self, index: int) -> tuple[Any, Any, np.ndarray]:
        rows = self._real_rows(index)
        indices = np.arange(index * self.batch_size, index * self.batch_size + rows)
        x, y = pad_batch(take(self.x, indices), take(self.y, indices), rows, self.multiple)
        weights = np.zeros(num_rows(x), dtype="float32")
        weights[:rows] = self.weight
        return x, y, weights


def padding_note(rows: int, batch_size: int, multiple: int) -> str | None:
    """What ``report.json`` says of a split's padded last batch, or ``None`` when none is padded."""
    last = rows % batch_size
    if multiple <= 1 or not last % multiple:
        return None
    padded = padded_rows(last, multiple)
    return f"last batch of {last} padded to {padded} with {padded - last} zero-weight rows (batch size {batch_size})"


def evaluation_batches(x: Any, y: Any, batch_size: int, multiple: int) -> EvaluationBatches | None:
    """Padded evaluation batches for ``fit(validation_data=...)`` / ``evaluate`` when batches must
    split over ``multiple`` replicas; ``None`` when they need not (evaluate ``(x, y)`` as it is)."""
    if multiple <= 1 or not num_rows(x):
        return None
    return EvaluationBatches(x, y, batch_size, multiple)
