"""curves.png: stage lines labelled with their stage number, whole-epoch ticks."""

from __future__ import annotations

from kplug.train import metrics_file
from kplug.train.curves import curves_figure, plot_curves


def two_stage_rows():
    rows = []
    for epoch, stage in enumerate([1, 1, 1, 2, 2], start=1):
        rows.append(
            {
                "stage": stage,
                "epoch": epoch,
                "loss": 1.0 / epoch,
                "val_loss": 1.2 / epoch,
                "accuracy": 0.1 * epoch,
            }
        )
    return rows


def test_stage_lines_are_labelled_and_ticks_are_whole_epochs():
    figure = curves_figure(two_stage_rows())
    figure.canvas.draw()
    axes = figure.axes
    assert [axis.get_title() for axis in axes] == ["accuracy", "loss"]
    for axis in axes:
        low, high = axis.get_xlim()
        ticks = [tick for tick in axis.get_xticks() if low <= tick <= high]
        assert ticks and all(float(tick).is_integer() for tick in ticks), ticks
        lines = [line for line in axis.get_lines() if line.get_linestyle() == ":"]
        assert [line.get_xdata()[0] for line in lines] == [3.5]  # between epoch 3 (stage 1) and 4 (stage 2)
        assert [text.get_text() for text in axis.texts] == ["stage 2"]


def test_three_stages_and_a_png(tmp_path):
    path = tmp_path / "metrics.csv"
    for epoch, stage in enumerate([1, 2, 2, 3], start=1):
        metrics_file.append_metrics_row(path, {"stage": stage, "epoch": epoch, "loss": 1.0 / epoch})
    figure = curves_figure(metrics_file.read_metrics(path))
    assert [text.get_text() for text in figure.axes[0].texts] == ["stage 2", "stage 3"]
    plot_curves(path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert curves_figure([]) is None
