"""Checks a run passes before its run directory is written: batch sizes and metric monitors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kplug.data.sources import SplitExamples
from kplug.errors import ConfigError
from kplug.model.assembly import logged_metric_names
from kplug.plugin.distribution import Distribution
from kplug.plugin.head import Head
from kplug.train.stage_plan import StagePlan


def check_batches(
    distribution: Distribution, splits: SplitExamples, plans: Sequence[StagePlan], batch_size: int
) -> None:
    """Let the distribution refuse a batch size it cannot split over its replicas.

    Args:
        batch_size: ``train.batch_size``, which evaluation on the test split uses.
    """
    for plan in plans:
        where = plan.batch_size_where
        distribution.check_batches("train", len(splits.train), plan.batch_size, where)
        distribution.check_batches("validation", len(splits.validation), plan.batch_size, where)
    test = splits.test if len(splits.test) else splits.validation
    distribution.check_batches("test", len(test), batch_size, "train.batch_size")


def check_monitors(
    heads: dict[str, Head], callbacks: Sequence[Any], save_best: str | None, splits: SplitExamples
) -> None:
    """Every ``monitor`` (callback options and ``output.save_best``) names a metric the run logs.

    Raises:
        ConfigError: naming the field, the monitor and the metrics the run logs.
    """
    has_validation = len(splits.validation) > 0
    logged = logged_metric_names(heads, validation=has_validation)
    monitors = [
        (f"callbacks[{i}].options.monitor", chosen.options.get("monitor"))
        for i, chosen in enumerate(callbacks)
    ]
    monitors.append(("output.save_best", save_best))
    for where, monitor in monitors:
        if monitor is not None and monitor not in logged:
            raise ConfigError(
                f"{where} = {monitor!r}: this run logs {', '.join(logged)}"
                + ("" if has_validation else " (val_* needs data.split.validation > 0)")
                + "."
            )
