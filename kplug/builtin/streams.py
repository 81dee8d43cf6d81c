"""Built-in streaming sources: generators and iterables, ``tf.data``, torch data, ``keras.utils.PyDataset``.

Each returns a ``kplug.data.streams.Stream``: kplug reads it once for its targets, then again
every epoch, and never holds its features in memory. The objects are recognised by their
interface, so no backend library is imported here (``tests/test_layering.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from kplug.data.streams import Stream
from kplug.errors import DataError
from kplug.plugin.manager import hookimpl

WHERE = "data.options.data"


def _indexed(data: Any, length: int) -> Any:
    """``read(start)`` of an object read by index: items ``start .. length - 1``."""

    def read(start: int) -> Iterable[Any]:
        return (data[index] for index in range(start, length))

    return read


def _not_a_path(data: Any, source: str) -> None:
    """A streaming source reads a Python object; a file name (``kplug predict --data FILE``) is refused."""
    if isinstance(data, (str, bytes, PurePath)):
        raise DataError(
            f"{WHERE}: source '{source}' reads a Python object, not the file {str(data)!r}; pass the "
            f"object from Python (kplug.predict(run_dir, data=obj))."
        )


def _is_once(data: Any) -> bool:
    """An iterator (a generator object): it yields its items once, then nothing."""
    return hasattr(data, "__next__") and iter(data) is data


def generator(data: Any, batched: bool | None = None) -> Stream:
    """Python data yielding ``(x, y)`` pairs: a generator function, a list or any re-iterable object.

    Args:
        data: a function that returns a fresh iterator (called once per epoch, e.g. a
            generator function), or an object that can be iterated again every epoch.
            An object with ``len()`` and indexing (a list) resumes mid-epoch exactly.
        batched: whether each pair is a batch (``True``) or one example (``False``);
            ``None`` decides from the first pair (a scalar target is one example).
    """
    _not_a_path(data, "generator")
    if _is_once(data):
        raise DataError(
            f"{WHERE}: a generator object can be read only once, and kplug reads the data every epoch; "
            f"pass the generator function itself (kplug calls it for every epoch)."
        )
    if callable(data) and not hasattr(data, "__iter__"):

        def read(start: int) -> Iterable[Any]:
            items = data()
            if not hasattr(items, "__iter__"):
                raise DataError(
                    f"{WHERE}: the function returned {type(items).__name__}; it must return an "
                    f"iterable of (x, y) pairs (e.g. be a generator function)."
                )
            return items

        return Stream(
            read, f"generator function {getattr(data, '__name__', '')}".strip(), False, batched, WHERE
        )
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return Stream(_indexed(data, len(data)), type(data).__name__, True, batched, WHERE)
    if hasattr(data, "__iter__"):
        return Stream(lambda start: data, type(data).__name__, False, batched, WHERE)
    raise DataError(
        f"{WHERE}: expected a generator function or an iterable of (x, y) pairs; got {type(data).__name__}."
    )


def tf_data(data: Any, batched: bool | None = None) -> Stream:
    """A ``tf.data.Dataset`` of ``(x, y)`` elements (batched or not), read as numpy on any backend.

    It cannot be read from the middle: a run resumes at the start of the interrupted epoch.
    """
    _not_a_path(data, "tf-data")
    if not hasattr(data, "as_numpy_iterator"):
        raise DataError(f"{WHERE}: expected a tf.data.Dataset; got {type(data).__name__}.")
    return Stream(lambda start: data.as_numpy_iterator(), "tf.data.Dataset", False, batched, WHERE)


def torch_data(data: Any, batched: bool | None = None) -> Stream:
    """A torch ``DataLoader`` (its batches), a map-style ``Dataset`` or an ``IterableDataset`` of ``(x, y)``.

    A map-style ``Dataset`` (``len()`` and indexing) gives one example per index and resumes
    mid-epoch exactly; a ``DataLoader`` or an ``IterableDataset`` resumes at the start of the
    interrupted epoch.
    """
    _not_a_path(data, "torch-data")
    if hasattr(data, "dataset") and hasattr(data, "batch_size") and hasattr(data, "__iter__"):
        loader_batched = data.batch_size is not None if batched is None else batched
        return Stream(lambda start: data, "torch DataLoader", False, loader_batched, WHERE)
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        mapped = False if batched is None else batched
        return Stream(_indexed(data, len(data)), f"torch {type(data).__name__}", True, mapped, WHERE)
    if hasattr(data, "__iter__"):
        return Stream(lambda start: data, f"torch {type(data).__name__}", False, batched, WHERE)
    raise DataError(
        f"{WHERE}: expected a torch DataLoader, Dataset or IterableDataset; got {type(data).__name__}."
    )


def pydataset(data: Any) -> Stream:
    """A ``keras.utils.PyDataset`` (or ``keras.utils.Sequence``): batch ``i`` is ``data[i]``, an ``(x, y)`` pair.

    Read by index, it resumes mid-epoch exactly.
    """
    _not_a_path(data, "pydataset")
    length = getattr(data, "num_batches", None)
    if length is None and hasattr(data, "__len__"):
        length = len(data)
    if length is None or not hasattr(data, "__getitem__"):
        raise DataError(
            f"{WHERE}: expected a keras.utils.PyDataset with a known number of batches (num_batches or "
            f"len()); got {type(data).__name__}."
        )
    return Stream(_indexed(data, length), type(data).__name__, True, True, WHERE)


@hookimpl
def kplug_register_datasets(register):
    """Register the streaming sources."""
    # path_option: kplug.predict(run_dir, data=obj) and validation_data=obj pass the object as ``data``
    for name, factory in (
        ("generator", generator),
        ("tf-data", tf_data),
        ("torch-data", torch_data),
        ("pydataset", pydataset),
    ):
        register(name, factory, path_option="data", in_memory=True)
