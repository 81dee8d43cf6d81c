"""Built-in data sources: IDX (MNIST format), NPZ arrays, CSV/TSV files and in-memory arrays."""

from __future__ import annotations

import csv
import gzip
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from kplug.data.example_set import Examples
from kplug.data.images import as_model_pixels
from kplug.data.streams import source_for
from kplug.errors import DataError
from kplug.plugin.manager import hookimpl

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_file(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), the format of MNIST."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DataError(f"{path}: not a readable IDX file ({error}).") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number).")
    dims = data[3]
    header = 4 + 4 * dims
    if dims == 0:
        raise DataError(f"{path}: the IDX header declares 0 dimensions, so the file holds no examples.")
    if len(data) < header:
        raise DataError(
            f"{path}: the IDX header declares {dims} dimensions but the file ends after "
            f"{len(data)} bytes (truncated)."
        )
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX header promises shape {shape} ({expected} bytes) but the file "
            f"holds {len(data) - header} bytes; the file is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def idx(images: str, labels: str | None = None, scale: bool = True) -> Examples:
    """IDX image and label files (MNIST format), images scaled to [0, 1] with a channel axis."""
    pixels = read_idx_file(images)
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    features = pixels.astype("float32") / 255.0 if scale else pixels
    targets = {}
    if labels is not None:
        values = read_idx_file(labels)
        if len(values) != len(features):
            raise DataError(
                f"data.options: {images} has {len(features)} images but {labels} has "
                f"{len(values)} labels; they must match one to one."
            )
        targets["label"] = values.astype("int64")
    return Examples(features, targets)


def npz(path: str, features: str = "x", targets: list[str] | None = None, scale: bool = True) -> Examples:
    """A NumPy .npz archive: one array of features and one array per target (default 'y' as label).

    ``uint8`` features are pixels: scaled to [0, 1] (unless ``scale`` is false), with a channel
    axis added to (N, H, W) images.
    """
    with open(path, "rb") as handle:  # a missing file raises FileNotFoundError, reported by the caller
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        raise DataError(
            f"{path}: not an .npz archive (a zip of .npy arrays, as numpy.savez writes); "
            f"the file starts with {magic!r}."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DataError(
            f"{path}: not a readable .npz archive ({error}); is it truncated or corrupt?"
        ) from None
    with archive:
        if features not in archive:
            raise DataError(f"{path}: no array '{features}'; arrays: {', '.join(archive.files)}.")
        names = targets if targets is not None else [n for n in ("y",) if n in archive]
        missing = [n for n in names if n not in archive]
        if missing:
            raise DataError(f"{path}: no target array {missing[0]!r}; arrays: {', '.join(archive.files)}.")
        try:
            found = {("label" if name == "y" else name): archive[name] for name in names}
            return Examples(as_model_pixels(archive[features], scale), found)
        except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            raise DataError(f"{path}: the .npz archive is truncated or corrupt ({error}).") from None
        except ValueError as error:
            if "allow_pickle" not in str(error):
                raise
            raise DataError(
                f"{path}: an array is a pickled object array; kplug does not load pickles "
                f"(they can run code). Save numeric or string arrays."
            ) from None


def _read_rows(path: str, delimiter: str, header: bool) -> tuple[list[str] | None, list[list[str]]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
            try:
                rows = list(reader)
            except csv.Error as error:
                raise DataError(
                    f"{path}, line {reader.line_num}: not readable as delimited text ({error}); "
                    f"check for an unclosed quote (it runs the rest of the file into one field)."
                ) from None
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text (byte {error.start} is {error.object[error.start : error.start + 1]!r}); "
            f"save it as UTF-8."
        ) from None
    rows = [row for row in rows if row]
    if header:
        if not rows:
            raise DataError(f"{path}: the file is empty; expected a header row.")
        return rows[0], rows[1:]
    return None, rows


def _column(columns: list[str] | None, name: str | int, path: str, width: int) -> int:
    if isinstance(name, int):
        if not 0 <= name < width:
            raise DataError(
                f"{path}: column {name} does not exist; the file has {width} columns (0-{width - 1})."
            )
        return name
    if columns is None or name not in columns:
        raise DataError(
            f"{path}: no column {name!r}; columns: {', '.join(columns or []) or 'none (header: false)'}."
        )
    return columns.index(name)


def table(
    path: str,
    label: str | int | None = "label",
    features: list[str | int] | None = None,
    delimiter: str = ",",
    header: bool = True,
    text: bool = False,
    targets: list[str | int] | None = None,
) -> Examples:
    """Delimited text (CSV/TSV): numeric feature columns (or one text column) and a label column.

    ``targets`` names further columns read as targets (kept out of the features), e.g. a
    second task's labels or per-example weights (``data.sample_weight``).
    """
    if len(delimiter) != 1:
        raise DataError(f"data.options.delimiter = {delimiter!r}: must be exactly one character.")
    columns, rows = _read_rows(path, delimiter, header)
    if not rows:
        raise DataError(f"{path}: no data rows.")
    width = len(columns) if columns else len(rows[0])
    for number, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise DataError(f"{path}, line {number}: {len(row)} fields, expected {width} (ragged row).")
    # a file without the label column (new data to predict on) reads without targets
    unlabeled = label is None or (isinstance(label, str) and columns is not None and label not in columns)
    label_index = None if unlabeled else _column(columns, label, path, width)
    # like the label, a named target column absent from the file (new data to predict on) is left out
    extra_indices = {
        str(name): _column(columns, name, path, width)
        for name in targets or []
        if not (isinstance(name, str) and columns is not None and name not in columns)
    }
    if features is None:
        feature_indices = [i for i in range(width) if i != label_index and i not in extra_indices.values()]
    else:
        feature_indices = [_column(columns, f, path, width) for f in features]
    matrix = np.asarray([[row[i] for i in feature_indices] for row in rows])
    if text:
        values: np.ndarray = matrix[:, 0] if matrix.shape[1] == 1 else matrix
    else:
        try:
            values = matrix.astype("float32")
        except ValueError:
            raise DataError(
                _non_numeric_message(path, matrix, feature_indices, columns, label_index)
            ) from None
        if not np.isfinite(values).all():
            row, position = np.argwhere(~np.isfinite(values))[0]
            index = feature_indices[position]
            name = columns[index] if columns else str(index)
            raise DataError(
                f"{path}: feature column {name!r} holds {str(matrix[row, position])!r} on data row {row + 1}; "
                f"features must be finite numbers (no nan or inf). Fill or drop those rows."
            )
    found: dict[str, Any] = {}
    if label_index is not None:
        raw_labels = [row[label_index] for row in rows]
        missing = next(
            (number for number, value in enumerate(raw_labels, start=1) if not value.strip()), None
        )
        if missing is not None:
            name = columns[label_index] if columns else str(label_index)
            raise DataError(
                f"{path}: missing label at data row {missing}, column {name!r}; every row needs a label. "
                f"Fill the cell or drop the row."
            )
        found["label"] = _parse_labels(np.asarray(raw_labels))
    for name, index in extra_indices.items():
        found[name] = _parse_labels(np.asarray([row[index] for row in rows]))
    return Examples(values, found)


def _non_numeric_message(
    path: str, matrix: np.ndarray, indices: list[int], columns: list[str] | None, label_index: int | None
) -> str:
    names = [columns[i] if columns else str(i) for i in indices]
    for position, name in enumerate(names):
        for row, value in enumerate(matrix[:, position]):
            if not str(value).strip():
                return (
                    f"{path}: missing value at data row {row + 1}, column {name!r}; feature columns "
                    f"must be numbers in every row. Fill the cell or drop the row."
                )
            try:
                float(value)
            except ValueError:
                label = "no label column" if label_index is None else f"label column {label_index}"
                return (
                    f"{path}: feature column {name!r} holds text ({str(value)!r} on data row {row + 1}); "
                    f"feature columns must be numbers ({label}; columns: {', '.join(names)}). "
                    f"Set data.options.label to the label column, or text: true for a text column."
                )
    return f"{path}: feature columns must be numbers."


def _parse_labels(raw: np.ndarray) -> np.ndarray:
    """Integers if every label is one, else real numbers if every label is one, else strings."""
    for dtype in ("int64", "float64"):
        try:
            return raw.astype(dtype)
        except ValueError:
            continue
    return raw


def tsv(
    path: str,
    label: str | int | None = "label",
    features: list[str | int] | None = None,
    header: bool = True,
    text: bool = False,
    targets: list[str | int] | None = None,
) -> Examples:
    """Tab-separated text: numeric feature columns (or one text column), a label column and ``targets``."""
    return table(
        path, label=label, features=features, delimiter="\t", header=header, text=text, targets=targets
    )


def arrays(x: Any, y: Any = None, targets: dict[str, Any] | None = None, scale: bool = True) -> Examples:
    """In-memory arrays from Python: features ``x`` and labels ``y`` (or several ``targets``).

    ``uint8`` features are pixels: scaled to [0, 1] (unless ``scale`` is false), with a channel
    axis added to (N, H, W) images, as ``keras.datasets.mnist.load_data()`` returns them.
    """
    for name, value in (("x", x), ("y", y), *((f"targets.{k}", v) for k, v in (targets or {}).items())):
        source = source_for(value)
        if source is not None:
            option = "frame" if source == "dataframe" else "data"
            raise DataError(
                f"data.options.{name}: the arrays source takes arrays (numpy, or lists of rows); got "
                f"{type(value).__name__}, which source '{source}' reads: "
                f"data: {{source: {source}, options: {{{option}: ...}}}}."
            )
    try:
        found = {name: np.asarray(values) for name, values in (targets or {}).items()}
        if y is not None:
            found["label"] = np.asarray(y)
        features = np.asarray(x)
    except ValueError as error:
        raise DataError(
            f"data.options: arrays x, y and targets must be rectangular (every row the same length): "
            f"{str(error).splitlines()[0]}"
        ) from None
    return Examples(as_model_pixels(features, scale), found)


@hookimpl
def kplug_register_datasets(register):
    """Register the built-in data sources."""
    register("idx", idx, path_option="images", target_options=("labels",))
    register("npz", npz, path_option="path")
    register("csv", table, path_option="path")
    register("tsv", tsv, path_option="path")
    register("arrays", arrays, in_memory=True)
