"""The test data folder and a TSV column reader (a module of its own so test files can import it)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data"


def read_column(path: Path, column: int = 0, header: bool = True) -> np.ndarray:
    """One column of a TSV file as an array of strings."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return np.asarray([row[column] for row in rows[1 if header else 0 :]])
