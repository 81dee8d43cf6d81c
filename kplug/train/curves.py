"""curves.png: every metric of metrics.csv per epoch, train and validation together, stages marked.

Each stage after the first starts at a dotted line labelled with its number ("stage 2"),
counted from 1 as in metrics.csv; the epoch axis has whole-epoch ticks only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kplug.train.metrics_file import read_metrics
from kplug.train.rundir import atomic_write


def stage_starts(rows: list[dict[str, float]]) -> list[tuple[int, float]]:
    """``(stage, first epoch)`` of every stage after the first, from metrics.csv rows."""
    starts = []
    for before, row in zip(rows, rows[1:], strict=False):
        if row["stage"] != before["stage"]:
            starts.append((int(row["stage"]), row["epoch"]))
    return starts


def curves_figure(rows: list[dict[str, float]]) -> Any:
    """A matplotlib figure with one panel per metric (``None`` when there are no rows).

    Args:
        rows: metrics.csv rows (``kplug.train.metrics_file.read_metrics``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not rows:
        return None
    names = sorted(
        {k for row in rows for k in row if k not in ("stage", "epoch") and not k.startswith("val_")}
    )
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    epochs = [row["epoch"] for row in rows]
    for axis, name in zip(axes[0], names, strict=True):
        axis.plot(epochs, [row.get(name) for row in rows], marker="o", label="train")
        if any(f"val_{name}" in row for row in rows):
            axis.plot(epochs, [row.get(f"val_{name}") for row in rows], marker="o", label="validation")
        for stage, first_epoch in stage_starts(rows):
            boundary = first_epoch - 0.5
            axis.axvline(boundary, color="grey", linestyle=":")
            axis.annotate(
                f"stage {stage}",
                xy=(boundary, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -3),
                textcoords="offset points",
                va="top",
                fontsize=8,
                color="grey",
            )
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    figure.tight_layout()
    return figure


def plot_curves(metrics_path: Path, output: Path) -> None:
    """Draw metrics.csv (``curves_figure``) to a PNG; nothing when it has no rows."""
    figure = curves_figure(read_metrics(metrics_path))
    if figure is None:
        return
    import matplotlib.pyplot as plt

    atomic_write(output, lambda tmp: figure.savefig(tmp, format="png", dpi=90))
    plt.close(figure)
