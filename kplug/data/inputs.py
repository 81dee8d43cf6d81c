"""Turn a resolved run's data into model inputs and per-head targets, for every split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kplug.data.example_set import Examples
from kplug.data.labels import LabelMap, build_label_map
from kplug.data.sources import (
    SplitExamples,
    merge_examples,
    read_all,
    read_examples,
    select_examples,
    split_examples,
)
from kplug.data.streams import Stream
from kplug.errors import ConfigError, DataError, PluginError
from kplug.plugin.resolve import ChosenHead, ResolvedRun, first_line

# What a model takes: one array, or a dict of arrays by input name (e.g. token_ids, padding_mask).
ModelInputs = np.ndarray | dict[str, np.ndarray]
Preprocess = Callable[[np.ndarray], ModelInputs]


def target_kind(head: ChosenHead) -> str:
    """The kind of target a head learns (``class``, ``multi_label`` or ``value``)."""
    factory = head.component.factory
    return getattr(factory, "target_kind", None) or head.component.extra("target_kind")


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


def head_targets(
    run: ResolvedRun, examples: Examples, label_maps: dict[str, LabelMap], one_hot: bool = False
) -> Any:
    """Encoded targets: one array for a single head, a dict by head id for several.

    With ``one_hot``, class ids become one-hot float rows (for batch augmentations
    such as MixUp that mix labels).
    """
    targets = {}
    for head in run.heads:
        label_map = label_maps[head.config.target]
        encoded = label_map.encode(examples.targets[head.config.target])
        if one_hot and label_map.kind == "class":
            encoded = np.eye(label_map.num_classes, dtype="float32")[encoded]
        targets[head.config.output_name] = encoded
    return next(iter(targets.values())) if len(targets) == 1 else targets


def build_preprocessor(run: ResolvedRun) -> Preprocess | None:
    """The run's preprocessor (e.g. a tokenizer), or ``None`` when the backbone takes the raw features.

    Built from ``model.preprocessor`` (or the backbone's default preprocessor) and its
    options; the returned function maps the raw features of N examples to the model
    inputs of N examples (an array, or a dict of arrays by input name).
    """
    chosen = run.preprocessor
    if chosen is None:
        return None
    try:
        return chosen.build()
    except OSError as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in chosen.options.items()) or "no options"
        raise ConfigError(
            f"{chosen.where}: preprocessor '{chosen.component.name}' could not be built from its options "
            f"({shown}): {first_line(error)}{chosen.moved_note()}"
        ) from None
    except ConfigError as error:
        if not chosen.moved:
            raise
        raise ConfigError(f"{error}{chosen.moved_note()}") from None


def model_inputs(preprocess: Preprocess | None, features: np.ndarray, where: str) -> ModelInputs:
    """Apply the backbone's preprocessor (if any) to raw features."""
    if preprocess is None:
        return features
    try:
        inputs = preprocess(features)
    except (ValueError, TypeError, UnicodeError) as error:
        raise DataError(
            f"{where}: the backbone's preprocessor rejected the features: {first_line(error)}"
        ) from None
    rows = {len(v) for v in inputs.values()} if isinstance(inputs, dict) else {len(inputs)}
    if rows != {len(features)}:
        raise PluginError(
            f"{where}: the backbone's preprocessor returned {sorted(rows)} rows for {len(features)} examples."
        )
    return inputs


def input_spec(inputs: ModelInputs) -> Any:
    """``(shape without batch axis, dtype)`` of the model input, or a dict of them by input name."""
    if isinstance(inputs, dict):
        return {name: input_spec(value) for name, value in inputs.items()}
    dtype = inputs.dtype
    return tuple(inputs.shape[1:]), "string" if dtype.kind in "USO" else str(dtype)


@dataclass
class PreparedData:
    """Split examples, the label maps that encode their targets and the model inputs of each split."""

    splits: SplitExamples
    label_maps: dict[str, LabelMap]
    preprocess: Preprocess | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)  # one-hot text columns (categories.json)
    stream: Stream | None = None  # the training examples, read every epoch (their features are not in memory)
    _inputs: dict[str, ModelInputs] = field(default_factory=dict)

    def inputs(self, split: str) -> ModelInputs:
        """Model inputs of a split (``train``, ``validation`` or ``test``), preprocessed once."""
        if split not in self._inputs:
            features = getattr(self.splits, split).features
            self._inputs[split] = model_inputs(self.preprocess, features, f"data ({split} split)")
        return self._inputs[split]

    @property
    def spec(self) -> Any:
        """Shape and dtype of one example's model input (a dict of them for several inputs)."""
        if self.stream is not None:  # the first example stands for all
            features = self.splits.train.features[:1]
            return input_spec(model_inputs(self.preprocess, np.array(features), "data"))
        return input_spec(self.inputs("train"))


def _strata(run: ResolvedRun, examples: Examples, label_maps: dict[str, LabelMap]) -> np.ndarray | None:
    first = run.heads[0].config.target
    if label_maps[first].kind != "class":
        return None
    return label_maps[first].encode(examples.targets[first])


def with_categories(
    component: Any, options: dict[str, Any], categories: dict[str, list[str]]
) -> dict[str, Any]:
    """``options`` with the training data's text-column ``categories``, for a source that takes them."""
    if not categories or "categories" not in component.options.model_fields:
        return options
    return {**options, "categories": categories}


def read_held_out(run: ResolvedRun, categories: dict[str, list[str]] | None = None) -> dict[str, Examples]:
    """The examples of ``data.validation`` / ``data.test``, each read from its own source.

    ``data.where`` selects among them as among the training data; ``data.limit`` does not apply.
    Text columns are encoded with the training data's ``categories``.
    """
    everything = run.config.data.model_copy(update={"limit": None})
    held_out = {}
    learned = {head.config.target for head in run.heads}
    for split, chosen in run.held_out.items():
        options = with_categories(chosen.component, chosen.options, categories or {})
        examples = read_all(chosen.component, options)
        missing = sorted(learned - set(examples.targets))
        if missing:
            raise DataError(
                f"data.{split}: its examples have no target {missing[0]!r}, which a head learns; "
                f"their targets: {', '.join(examples.targets) or 'none (the source read no labels)'}."
            )
        held_out[split] = select_examples(examples, everything, run.config.seed)
    return held_out


def with_targets_of(examples: Examples, others: Any) -> Examples:
    """``examples`` with the targets of ``others`` appended (features left out): label maps see every class."""
    parts = [examples, *others]
    if len(parts) == 1:
        return examples
    shared = [t for t in examples.targets if all(t in p.targets for p in parts)]
    targets = {t: np.concatenate([p.targets[t] for p in parts]) for t in shared}
    return Examples(np.zeros(sum(len(p) for p in parts)), targets, dict(examples.label_names))


def _scan_stream(run: ResolvedRun, stream: Stream) -> Examples:
    """The targets of a stream (read once), after checking the run asks nothing a stream cannot do."""
    data = run.config.data
    name = run.dataset.component.name
    for field_name, value in (("split.validation", data.split.validation), ("split.test", data.split.test)):
        if value:
            raise ConfigError(
                f"data.{field_name} = {value:g}: source '{name}' streams its examples, which kplug does not "
                f"split; give held-out data as validation_data= / test_data= (or data.validation / data.test)."
            )
    for field_name, value in (("where", data.where), ("limit", data.limit)):
        if value:
            raise ConfigError(
                f"data.{field_name}: source '{name}' streams its examples, which kplug does not filter; "
                f"select them in the source itself."
            )
    return stream.scan()


def prepare_data(run: ResolvedRun) -> PreparedData:
    """Read, select, label-map and split the run's examples (a stream is read once, for its targets)."""
    stream = None
    if run.merged:
        examples = merge_examples({n: read_all(c.component, c.options) for n, c in run.merged.items()})
    else:
        examples = read_examples(run.dataset.component, run.dataset.options)
    if isinstance(examples, Stream):
        stream, examples = examples, _scan_stream(run, examples)
    else:
        examples = select_examples(examples, run.config.data, run.config.seed)
    held_out = read_held_out(run, examples.categories)
    label_maps = build_label_maps(run, with_targets_of(examples, held_out.values()))
    if stream is not None:
        splits = SplitExamples.train_only(examples)
    else:
        splits = split_examples(
            examples, run.config.data, run.config.seed, _strata(run, examples, label_maps)
        )
    for split, part in held_out.items():
        setattr(splits, split, part)
    preprocess = build_preprocessor(run)
    if preprocess is None and examples.features.dtype.kind not in "biuf":
        backbone = run.backbone.component
        raise DataError(
            f"data: the features are {_dtype_name(examples.features)} (dtype {examples.features.dtype}), "
            f"but backbone '{backbone.name}' ({backbone.provider}) takes numbers and has no preprocessor "
            f"to turn them into numbers. Use numeric features, or a backbone with a preprocessor "
            f"(a text backbone such as kplug-text's bert for text)."
        )
    return PreparedData(splits, label_maps, preprocess, examples.categories, stream)


def _dtype_name(array: np.ndarray) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects"}.get(array.dtype.kind, "not numbers")
