"""``Stream``: examples a data source reads in order from a Python object, again every epoch.

A streaming source (a generator function, a ``tf.data.Dataset``, a torch ``DataLoader`` or
``Dataset``, a ``keras.utils.PyDataset``) returns a ``Stream`` instead of ``Examples``: kplug
never holds its features in memory. Before training, kplug reads the stream once for its
targets only (to build the label maps and count the examples); each epoch then reads it again
and cuts it into the run's batches.

A stream whose items can be read from any index (``seekable``: a map-style torch ``Dataset``,
a ``PyDataset``) resumes mid-epoch exactly; one that can only be read from the start (a
generator, ``tf.data``, an iterable ``DataLoader``) resumes at the start of the interrupted
epoch, and ``report.json`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kplug.data.example_set import Examples
from kplug.errors import DataError

# read(start) -> the items from item ``start`` on (a non-seekable source is only read from 0)
Reader = Callable[[int], Iterable[Any]]


def source_for(value: Any) -> str | None:
    """The built-in source that reads ``value``, when it is a data object rather than an array."""
    module = type(value).__module__.split(".")[0]
    if hasattr(value, "as_numpy_iterator"):
        return "tf-data"
    if module == "torch" and not hasattr(value, "__array__"):
        return "torch-data"
    if hasattr(value, "num_batches") and hasattr(value, "__getitem__"):
        return "pydataset"
    if hasattr(value, "columns") and hasattr(value, "iloc"):
        return "dataframe"
    if callable(value) or (hasattr(value, "__next__") and iter(value) is value):
        return "generator"
    return None


def as_array(value: Any, what: str, where: str) -> np.ndarray:
    """A numpy array from a numpy, torch, TensorFlow or JAX array (anything with ``__array__``)."""
    if hasattr(value, "detach"):  # a torch tensor that requires grad has no __array__ of its own
        value = value.detach().cpu()
    array = np.asarray(value)
    if array.dtype == object:
        raise DataError(
            f"{where}: the {what} of an item is {type(value).__name__}, not an array (numpy, torch, "
            f"TensorFlow or JAX) or a number."
        )
    return array


@dataclass
class Chunk:
    """The rows of one item: features and raw targets by name."""

    x: np.ndarray
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.x)

    def rows(self, start: int, stop: int) -> Chunk:
        """Rows ``start:stop``."""
        return Chunk(self.x[start:stop], {k: v[start:stop] for k, v in self.targets.items()})


def _concatenate(chunks: list[Chunk]) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    return Chunk(
        np.concatenate([c.x for c in chunks]),
        {k: np.concatenate([c.targets[k] for c in chunks]) for k in chunks[0].targets},
    )


@dataclass
class Stream:
    """Items ``(x, y)`` read in order from a Python object, every epoch again.

    Args:
        read: ``read(start)`` iterates the items from item ``start`` (only ``0`` unless seekable).
        source: what the items come from, for messages and the report (``"tf.data.Dataset"``).
        seekable: whether ``read`` can start at any item (exact mid-epoch resume).
        batched: whether an item is a batch of examples (``True``), one example (``False``), or
            ``None`` to decide from the first item: a scalar target is one example.
        where: the config field, for messages.

    Each item is ``(x, y)``: ``x`` an array, ``y`` an array (the target ``label``) or a dict of
    arrays by target name.
    """

    read: Reader
    source: str
    seekable: bool = False
    batched: bool | None = None
    where: str = "data.options"
    _item_rows: list[int] = field(default_factory=list)

    def _chunk(self, item: Any, index: int) -> Chunk:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise DataError(
                f"{self.where}: item {index} of the {self.source} is {type(item).__name__}"
                f"{f' of {len(item)}' if isinstance(item, (tuple, list)) else ''}; each item must be a pair "
                f"(x, y): features and targets (an array, or a dict of arrays by target name)."
            )
        x, y = item
        if isinstance(y, dict):
            targets = {str(k): as_array(v, f"target {k!r}", self.where) for k, v in y.items()}
        else:
            targets = {"label": as_array(y, "target", self.where)}
        features = as_array(x, "features", self.where)
        if self.batched is None:
            self.batched = next(iter(targets.values())).ndim > 0 and features.ndim > 1
        if not self.batched:
            return Chunk(features[None], {k: v[None] for k, v in targets.items()})
        rows = {len(features), *(len(v) for v in targets.values())}
        if len(rows) != 1:
            raise DataError(
                f"{self.where}: item {index} of the {self.source} has {len(features)} rows of features "
                f"but targets of {sorted(rows - {len(features)})} rows; a batch needs one target row per example."
            )
        return Chunk(features, targets)

    def chunks(self, start: int = 0) -> Iterator[Chunk]:
        """The items from item ``start`` on, as ``Chunk``s."""
        if start and not self.seekable:
            raise DataError(f"{self.where}: the {self.source} cannot be read from item {start}.")
        for index, item in enumerate(self.read(start), start=start):
            yield self._chunk(item, index)

    def scan(self) -> Examples:
        """Read the stream once and keep only its targets: ``Examples`` whose features take no memory.

        The features are a read-only broadcast of the first example (its shape and dtype, for
        building the model); the trainer reads the real rows with ``batches``.
        """
        parts: list[dict[str, np.ndarray]] = []
        first: np.ndarray | None = None
        self._item_rows = []
        for chunk in self.chunks():
            if first is None:
                first = chunk.x[:1]
            elif chunk.x.shape[1:] != first.shape[1:]:
                raise DataError(
                    f"{self.where}: item {len(self._item_rows)} of the {self.source} has examples of shape "
                    f"{chunk.x.shape[1:]}, the first item {first.shape[1:]}; every example needs the same shape."
                )
            parts.append(chunk.targets)
            self._item_rows.append(len(chunk))
        if first is None:
            raise DataError(f"{self.where}: the {self.source} yielded no items.")
        rows = sum(self._item_rows)
        targets = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        features = np.broadcast_to(first, (rows, *first.shape[1:]))
        return Examples(features, targets)

    @property
    def rows(self) -> int:
        """Examples per epoch (after ``scan``)."""
        return sum(self._item_rows)

    def batches(self, batch_size: int, start_row: int = 0) -> Iterator[tuple[Chunk, np.ndarray]]:
        """One epoch cut into batches of ``batch_size`` rows from row ``start_row``, with their row numbers.

        Raises:
            DataError: the stream yields fewer or more examples than when it was scanned.
        """
        item, offset = 0, start_row
        while item < len(self._item_rows) and offset >= self._item_rows[item]:
            offset -= self._item_rows[item]
            item += 1
        row = start_row
        pending: list[Chunk] = []
        held = 0
        for chunk in self.chunks(item):
            if offset:
                chunk, offset = chunk.rows(offset, len(chunk)), 0
            pending.append(chunk)
            held += len(chunk)
            if row + held > self.rows:
                break  # more examples than scanned: reported below
            while held >= batch_size:
                merged = _concatenate(pending)
                batch, rest = merged.rows(0, batch_size), merged.rows(batch_size, len(merged))
                yield batch, np.arange(row, row + batch_size)
                row += batch_size
                pending, held = ([rest] if len(rest) else []), len(rest)
        if held and row + held <= self.rows:
            yield _concatenate(pending), np.arange(row, row + held)
            row, held = row + held, 0
        if row + held != self.rows:
            raise self.count_error(row + held)

    def count_error(self, found: int) -> DataError:
        """The error for an epoch that read ``found`` examples, not the scanned number."""
        more = "more than " if found > self.rows else ""
        return DataError(
            f"{self.where}: the {self.source} yielded {more}{found} examples in this epoch but {self.rows} "
            f"when kplug first read it; a streaming source must give the same examples every epoch."
        )

    def to_examples(self) -> Examples:
        """Every example in memory (for validation and test data given as a stream)."""
        chunks = list(self.chunks())
        if not chunks:
            raise DataError(f"{self.where}: the {self.source} yielded no items.")
        whole = _concatenate(chunks)
        return Examples(whole.x, whole.targets)


def describe(stream: Stream, name: str) -> dict[str, Any]:
    """The ``data.stream`` entry of ``report.json``."""
    return {
        "source": name,
        "reads": stream.source,
        "seekable": stream.seekable,
        "resume": "exact (mid-epoch)" if stream.seekable else "epoch boundary",
    }
