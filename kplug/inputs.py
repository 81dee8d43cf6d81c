"""Turn a resolved run's data into model inputs and per-head targets, for every split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kplug.data import SplitExamples, read_examples, select_examples, split_examples
from kplug.errors import DataError
from kplug.examples import Examples
from kplug.labels import LabelMap, build_label_map
from kplug.resolve import ChosenHead, ResolvedRun


def target_kind(head: ChosenHead) -> str:
    """The kind of target a head learns (``class``, ``multi_label`` or ``value``)."""
    factory = head.component.factory
    return getattr(factory, "target_kind", None) or head.component.extras.get("target_kind", "class")


def build_label_maps(run: ResolvedRun, examples: Examples) -> dict[str, LabelMap]:
    """One label map per target that a head learns, built from the selected examples."""
    maps: dict[str, LabelMap] = {}
    for index, head in enumerate(run.heads):
        target = head.config.target
        if target not in examples.targets:
            raise DataError(
                f"model.heads[{index}].target = {target!r}: the data has no such target; "
                f"targets: {', '.join(examples.targets) or 'none (the source read no labels)'}."
            )
        kind = target_kind(head)
        if target in maps:
            if maps[target].kind != kind:
                raise DataError(f"Target {target!r} is learned by heads of different kinds.")
            continue
        maps[target] = build_label_map(
            target,
            kind,
            examples.targets[target],
            known_names=examples.label_names.get(target),
            selected=run.config.data.where.get(target),
            num_classes=head.options.get("num_classes"),
        )
    return maps


def head_targets(run: ResolvedRun, examples: Examples, label_maps: dict[str, LabelMap]) -> Any:
    """Encoded targets: one array for a single head, a dict by head id for several."""
    targets = {
        head.config.output_name: label_maps[head.config.target].encode(examples.targets[head.config.target])
        for head in run.heads
    }
    return next(iter(targets.values())) if len(targets) == 1 else targets


@dataclass
class PreparedData:
    """Split examples and the label maps that encode their targets."""

    splits: SplitExamples
    label_maps: dict[str, LabelMap]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example's features."""
        return tuple(self.splits.train.features.shape[1:])

    @property
    def input_dtype(self) -> str:
        """Feature dtype as the model's input dtype."""
        dtype = self.splits.train.features.dtype
        return "string" if dtype.kind in "US" else str(dtype)


def _strata(run: ResolvedRun, examples: Examples, label_maps: dict[str, LabelMap]) -> np.ndarray | None:
    first = run.heads[0].config.target
    if label_maps[first].kind != "class":
        return None
    return label_maps[first].encode(examples.targets[first])


def prepare_data(run: ResolvedRun) -> PreparedData:
    """Read, select, label-map and split the run's examples."""
    examples = read_examples(run.dataset.component, run.dataset.options)
    examples = select_examples(examples, run.config.data, run.config.seed)
    label_maps = build_label_maps(run, examples)
    splits = split_examples(examples, run.config.data, run.config.seed, _strata(run, examples, label_maps))
    return PreparedData(splits, label_maps)
