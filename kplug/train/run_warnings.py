"""Python warnings raised while a run trains: counted for ``report.json`` instead of printed per step.

Libraries warn from inside the training loop (a Keras or backend deprecation, a data loader
hint) and, with Python's default filters, again for each new place or message: the lines bury
kplug's progress and the user cannot act on them. ``collect_warnings()`` records each distinct
warning with how often it was raised; ``report.json`` lists them under ``warnings``.

Filters the user or a test set still apply: ``ignore`` drops a warning and ``error`` raises it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

SHOWN_ONCE = ("default", "module", "once")  # actions that would hide repeats, which are counted here


class WarningLog:
    """The warnings raised in a ``collect_warnings()`` block, by category, message and place."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()

    def record(
        self, message: Any, category: type[Warning], filename: str, lineno: int, *_: Any, **__: Any
    ) -> None:
        """``warnings.showwarning`` while the block runs: count instead of print."""
        self._counts[(category.__name__, str(message), f"{filename}:{lineno}")] += 1

    def summary(self) -> list[dict[str, Any]]:
        """One entry per distinct warning: ``category``, ``message``, ``where`` (file:line) and ``count``."""
        return [
            {"category": category, "message": message, "where": where, "count": count}
            for (category, message, where), count in self._counts.items()
        ]


@contextlib.contextmanager
def collect_warnings() -> Iterator[WarningLog]:
    """Within the block, Python warnings are counted in the yielded ``WarningLog``, not printed."""
    log = WarningLog()
    with warnings.catch_warnings():
        warnings.filters[:] = [
            ("always", *entry[1:]) if entry[0] in SHOWN_ONCE else entry for entry in warnings.filters
        ]
        warnings.filterwarnings("always", append=True)  # what no filter matches is counted too
        warnings.showwarning = log.record
        yield log
