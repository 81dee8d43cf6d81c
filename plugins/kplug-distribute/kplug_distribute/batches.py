"""Each process's share of a sequence of global batches (multi-process data parallel).

kplug hands the trainer's training batches, a ``keras.utils.PyDataset`` (or any
sequence) of ``(x, y[, sample_weight])`` numpy batches in the run's global order,
to ``Distribution.shard_batches``. Every process then reads the same global batch
at the same step and keeps its contiguous slice, so the processes together see
exactly the batches a single-device run sees.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def _rows(structure: Any) -> int:
    if isinstance(structure, dict):
        return _rows(next(iter(structure.values())))
    if isinstance(structure, (list, tuple)):
        return _rows(structure[0])
    return len(structure)


def _slice(structure: Any, start: int, stop: int) -> Any:
    if structure is None:
        return None
    if isinstance(structure, dict):
        return {key: _slice(value, start, stop) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(_slice(value, start, stop) for value in structure)
    return np.asarray(structure)[start:stop]


def shard_bounds(rows: int, rank: int, processes: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a batch of ``rows`` that process ``rank`` of ``processes`` keeps."""
    share = rows // processes
    return rank * share, (rank + 1) * share


class ProcessShard(keras.utils.PyDataset):
    """Process ``rank``'s slice of each batch of ``batches``.

    Args:
        batches: a sequence (``__len__``/``__getitem__``) of ``(x, y[, sample_weight])``.
        rank: this process's index.
        processes: how many processes share each batch; each batch's size must be a
            multiple of it (``Distribution.check_batches`` enforces this up front).
    """

    def __init__(self, batches: Any, rank: int, processes: int) -> None:
        super().__init__()
        self.batches = batches
        self.rank = rank
        self.processes = processes

    @property
    def num_batches(self) -> int | None:
        """The wrapped sequence's length (``None`` for kplug's endless training stream)."""
        inner = (
            getattr(self.batches, "num_batches", None)
            if isinstance(self.batches, keras.utils.PyDataset)
            else None
        )
        return inner if isinstance(self.batches, keras.utils.PyDataset) else len(self.batches)

    def __getitem__(self, index: int) -> Any:
        batch = self.batches[index]
        rows = _rows(batch[0])
        if rows % self.processes:
            raise ValueError(
                f"batch {index} has {rows} rows, which do not split over {self.processes} processes"
            )
        start, stop = shard_bounds(rows, self.rank, self.processes)
        return tuple(_slice(part, start, stop) for part in batch)

    def on_epoch_end(self) -> None:
        if hasattr(self.batches, "on_epoch_end"):
            self.batches.on_epoch_end()
