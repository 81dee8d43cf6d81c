"""Training batches in an order kplug owns: seeded per epoch, resumable mid-epoch, accumulation-aware.

``Model.fit`` on arrays shuffles with the backend's own random state, which a
checkpoint cannot capture. kplug instead feeds ``fit`` a ``keras.utils.PyDataset``
whose epoch ``e`` visits the examples in ``permutation(seed, e)``: a pure function
of the seed and the epoch, so a resumed run sees exactly the batches an
uninterrupted run would have seen, on every backend.

With gradient accumulation over ``k`` micro-batches, Keras averages the ``k``
per-batch mean losses, which weights a short batch like a full one and never
applies a short final window. ``TrainingBatches`` fixes both with sample weights
(every example of a window counts ``1 / window size``) and by padding the last
window with zero-weight copies of its last micro-batch, so batch ``N`` with ``k``
accumulation steps updates the weights exactly like batch ``N * k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

# transform(x, y, rng) -> (x, y): a batch augmentation applied to training batches only
BatchTransform = Callable[[Any, Any, np.random.Generator], tuple[Any, Any]]


def take(data: Any, indices: np.ndarray) -> Any:
    """Rows ``indices`` of an array, or of every array in a dict."""
    if isinstance(data, dict):
        return {key: value[indices] for key, value in data.items()}
    return data[indices]


def num_rows(data: Any) -> int:
    """Number of examples in an array or a dict of arrays."""
    if isinstance(data, dict):
        return len(next(iter(data.values())))
    return len(data)


def padded_rows(rows: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that holds ``rows``."""
    return math.ceil(rows / multiple) * multiple


def pad_batch(x: Any, y: Any, rows: int, multiple: int) -> tuple[Any, Any]:
    """``x`` and ``y`` (arrays or dicts of arrays) with copies of their last row up to a multiple."""
    extra = padded_rows(rows, multiple) - rows
    if not extra:
        return x, y
    indices = np.concatenate([np.arange(rows), np.full(extra, rows - 1)])
    return take(x, indices), take(y, indices)


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The order in which epoch ``epoch`` (counted over the whole run) visits ``size`` examples."""
    return np.random.default_rng([seed, epoch]).permutation(size)


class TrainingBatches(keras.utils.PyDataset):
    """One stage's training batches for ``Model.fit(..., steps_per_epoch=..., shuffle=False)``.

    The dataset is an endless stream: batch ``i`` of the stream is batch
    ``(skip + i) % batches_per_epoch`` of epoch ``first_epoch + (skip + i) //
    batches_per_epoch``. Being a pure function of ``i``, it cannot be thrown off by
    Keras peeking at batches or prefetching across an epoch boundary.

    Args:
        x: model inputs (an array, or a dict of arrays by input name).
        y: targets (an array, or a dict of arrays by head id).
        batch_size: examples per (micro-)batch.
        seed: the run's seed.
        first_epoch: the overall index of the epoch the stream starts in.
        skip_batches: batches of the first epoch already trained (a mid-epoch resume).
        accumulation: micro-batches per optimizer update (``gradient_accumulation_steps``).
        transforms: batch augmentations, applied in order to every batch.
        weights: each example's loss weight (class and sample weights), or ``None``.
        multiple: the replica count every batch must split into: a shorter last batch is
            padded with zero-weight rows (``kplug.data.padding``).
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        batch_size: int,
        seed: int,
        first_epoch: int = 0,
        skip_batches: int = 0,
        accumulation: int = 1,
        transforms: Sequence[BatchTransform] = (),
        weights: np.ndarray | None = None,
        multiple: int = 1,
    ) -> None:
        super().__init__()
        self.x = x
        self.y = y
        self.size = num_rows(x)
        self.batch_size = batch_size
        self.seed = seed
        self.first_epoch = first_epoch
        self.skip = skip_batches
        self.accumulation = accumulation
        self.transforms = list(transforms)
        self.weights = weights
        self.multiple = multiple
        self._orders: dict[int, np.ndarray] = {}

    @property
    def data_batches(self) -> int:
        """Batches that hold data in one epoch."""
        return math.ceil(self.size / self.batch_size)

    @property
    def batches_per_epoch(self) -> int:
        """Batches ``fit`` runs per epoch: a whole number of accumulation windows."""
        return math.ceil(self.data_batches / self.accumulation) * self.accumulation

    @property
    def num_batches(self) -> None:
        """An endless stream (``fit`` gets ``steps_per_epoch``)."""
        return None

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: epoch_order(self.seed, epoch, self.size)}  # keep one epoch
        return self._orders[epoch]

    def position(self, index: int) -> tuple[int, int]:
        """``(epoch, batch within the epoch)`` of stream batch ``index``."""
        epoch, batch = divmod(self.skip + index, self.batches_per_epoch)
        return self.first_epoch + epoch, batch

    @property
    def weighted(self) -> bool:
        """Whether examples carry loss weights (class or sample weights)."""
        return self.weights is not None

    @property
    def padded(self) -> bool:
        """Whether the last batch of an epoch is padded to split over ``multiple`` replicas."""
        return (self.size % self.batch_size) % self.multiple != 0

    def rows(self, epoch: int, data_batch: int) -> tuple[Any, Any, np.ndarray | None]:
        """Inputs, targets and loss weights (or ``None``) of batch ``data_batch`` of epoch ``epoch``."""
        indices = self._order(epoch)[data_batch * self.batch_size : (data_batch + 1) * self.batch_size]
        weights = None if self.weights is None else self.weights[indices]
        return take(self.x, indices), take(self.y, indices), weights

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        epoch, batch = self.position(index)
        data_batch = min(batch, self.data_batches - 1)  # padding repeats the last data batch
        x, y, example_weights = self.rows(epoch, data_batch)
        rows = num_rows(x)
        if self.transforms:  # a generator costs ~14 us per batch: made only for batch augmentations
            rng = np.random.default_rng([self.seed, epoch, batch])
            for transform in self.transforms:
                x, y = transform(x, y, rng)
        if self.accumulation == 1 and not self.weighted and not self.padded:
            return x, y
        padded = padded_rows(rows, self.multiple)
        # real rows weigh up for the padding, so the batch's loss is that of its real rows
        weights = np.zeros(padded, dtype="float32")
        weights[:rows] = self._weight(batch, rows) * padded / rows
        if example_weights is not None:
            weights[:rows] *= example_weights
        x, y = pad_batch(x, y, rows, self.multiple)
        return x, y, weights

    def _weight(self, batch: int, rows: int) -> float:
        """Per-example weight that turns Keras' mean of micro-batch means into a mean over the window."""
        if batch >= self.data_batches:
            return 0.0
        window = batch // self.accumulation
        first = window * self.accumulation * self.batch_size
        window_rows = min(self.size, first + self.accumulation * self.batch_size) - first
        return self.accumulation * rows / window_rows
