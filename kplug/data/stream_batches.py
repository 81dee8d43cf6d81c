"""Training batches pulled from a ``Stream``: the source's own order, cut into the run's batch size.

``StreamBatches`` is a ``TrainingBatches`` (same endless-stream indexing, accumulation padding and
batch augmentations) whose rows come from the source as it yields them, one epoch after the
other, instead of from arrays in a seeded order. Only the current batch is in memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from kplug.data.batches import BatchTransform, TrainingBatches
from kplug.data.streams import Chunk, Stream
from kplug.errors import DataError

RECENT = 4  # batches kept for a repeated request

# encode(chunk) -> (model inputs, encoded targets, loss weights or None)
Encode = Callable[[Chunk], tuple[Any, Any, np.ndarray | None]]


class StreamBatches(TrainingBatches):
    """One stage's training batches read from ``stream``.

    Args:
        stream: the scanned stream (``Stream.scan`` counted its examples).
        encode: turns a batch's rows into model inputs, encoded targets and loss weights.
        batch_size, seed, first_epoch, skip_batches, accumulation, transforms: as for
            ``TrainingBatches``. ``skip_batches`` needs a seekable stream.
        weighted: whether ``encode`` returns loss weights.
    """

    def __init__(
        self,
        stream: Stream,
        encode: Encode,
        batch_size: int,
        seed: int,
        first_epoch: int = 0,
        skip_batches: int = 0,
        accumulation: int = 1,
        transforms: Sequence[BatchTransform] = (),
        weighted: bool = False,
    ) -> None:
        placeholder = np.zeros((stream.rows, 0), dtype="float32")  # only its length is read
        super().__init__(
            placeholder, placeholder, batch_size, seed, first_epoch, skip_batches, accumulation, transforms
        )
        if skip_batches and not stream.seekable:
            raise DataError(f"{stream.where}: the {stream.source} cannot resume mid-epoch.")
        self.stream = stream
        self.encode = encode
        self._weighted = weighted
        self._reader: Iterator[tuple[Chunk, np.ndarray]] | None = None
        self._next: tuple[int, int] | None = None  # the (epoch, batch) the reader yields next
        # the newest batches by (epoch, batch): Keras (TensorFlow) reads the first two batches to
        # learn their shapes, then starts over; serving them again keeps the source read once per epoch
        self._recent: OrderedDict[tuple[int, int], tuple[Any, Any, Any]] = OrderedDict()

    @property
    def weighted(self) -> bool:
        return self._weighted

    def rows(self, epoch: int, data_batch: int) -> tuple[Any, Any, np.ndarray | None]:
        """The batch read from the stream; a repeated request (Keras peeking, padding) is served again.

        The four newest batches are kept (a few batches of memory, never the epoch).
        """
        key = (epoch, data_batch)
        if key in self._recent:
            return self._recent[key]
        if key != self._next:
            first = self.skip if epoch == self.first_epoch else 0
            if data_batch != first and not self.stream.seekable:
                raise DataError(
                    f"{self.stream.where}: batch {data_batch} of epoch {epoch + 1} was asked for out of order; "
                    f"the {self.stream.source} can only be read from its start."
                )
            self._reader = self.stream.batches(self.batch_size, data_batch * self.batch_size)
        try:
            chunk, _ = next(self._reader)
        except StopIteration:
            raise self.stream.count_error(data_batch * self.batch_size) from None
        self._next = (epoch, data_batch + 1)
        self._recent[key] = self.encode(chunk)
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)
        return self._recent[key]
