"""Put a run's augmentations, backbone and heads together into one ``keras.Model``."""

from __future__ import annotations

from typing import Any

import keras

from kplug.data.labels import LabelMap
from kplug.errors import ConfigError, DataError, PluginError
from kplug.model.compile_options import compile_options
from kplug.model.metrics import RealRows, head_metrics
from kplug.model.paths import STRUCTURAL_LAYERS
from kplug.plugin.head import Head
from kplug.plugin.resolve import Chosen, ChosenHead, ResolvedRun, call_factory, first_line


def build_head(chosen: ChosenHead, label_map: LabelMap, index: int) -> Head:
    """Build one head, taking ``num_classes`` from the data when the config leaves it unset."""
    options = dict(chosen.options)
    where = f"model.heads[{index}]"
    if label_map.kind != "value" and "num_classes" in options:
        known = label_map.num_classes
        if options["num_classes"] is None:
            options["num_classes"] = known
        elif options["num_classes"] != known:
            raise ConfigError(
                f"{where}.options.num_classes = {options['num_classes']}, but target "
                f"'{label_map.target}' has {known} classes ({', '.join(label_map.names or [])}). "
                f"Remove num_classes to take it from the data, or select classes with data.where."
            )
    head = call_factory(chosen.component, options, where)
    if not isinstance(head, Head):
        raise PluginError(
            f"Head '{chosen.component.name}' ({chosen.component.provider}) returned "
            f"{type(head).__name__}; a head factory must return a kplug.Head."
        )
    head.chosen_metrics = chosen.metrics
    head_metrics(head)  # a metric that cannot measure this head fails here, before training
    return head


def _build_backbone(run: ResolvedRun, spec: Any, preprocessor: Any) -> keras.layers.Layer:
    # a single input's shape, or {name: shape} for a backbone fed by a preprocessor's dict
    shapes = {k: v[0] for k, v in spec.items()} if isinstance(spec, dict) else spec[0]
    context = {} if preprocessor is None else {"preprocessor": preprocessor}
    backbone = run.backbone.build(input_shape=shapes, **context)
    if not isinstance(backbone, keras.layers.Layer):
        raise PluginError(
            f"Backbone '{run.backbone.component.name}' ({run.backbone.component.provider}) returned "
            f"{type(backbone).__name__}; a backbone factory must return a keras.Model or layer."
        )
    backbone.name = "backbone"
    return backbone


def model_inputs(spec: Any) -> Any:
    """Keras inputs for one example's ``(shape, dtype)``, or a dict of them by input name."""
    if isinstance(spec, dict):
        return {name: keras.Input(shape, dtype=dtype, name=name) for name, (shape, dtype) in spec.items()}
    shape, dtype = spec
    return keras.Input(shape, dtype=dtype, name="inputs")


def _build_augment(run: ResolvedRun) -> keras.layers.Layer | None:
    layers = []
    for index, chosen in enumerate(run.augmentations):
        if is_batch_augmentation(chosen):
            continue
        layer = chosen.build()
        if not isinstance(layer, keras.layers.Layer):
            raise PluginError(
                f"Augmentation '{chosen.component.name}' ({chosen.component.provider}, augment[{index}]) returned "
                f"{type(layer).__name__}; an augmentation factory must return a keras layer."
            )
        layers.append(layer)
    return keras.Sequential(layers, name="augment") if layers else None


def is_batch_augmentation(chosen: Chosen) -> bool:
    """Whether an augmentation transforms whole training batches (with labels) in the input pipeline."""
    return bool(chosen.component.extra("batch"))


def build_batch_transforms(run: ResolvedRun) -> list[Any]:
    """The run's batch augmentations (MixUp-style ``transform(x, y, rng) -> (x, y)``), in config order."""
    transforms = []
    for chosen in run.augmentations:
        if is_batch_augmentation(chosen):
            transform = chosen.build()
            if not callable(transform):
                raise PluginError(
                    f"Augmentation '{chosen.component.name}' ({chosen.where}) is registered with batch=True "
                    f"but returned {type(transform).__name__}; it must return transform(x, y, rng) -> (x, y)."
                )
            transforms.append(transform)
    return transforms


def build_model(
    run: ResolvedRun, spec: Any, label_maps: dict[str, LabelMap], preprocessor: Any = None
) -> tuple[keras.Model, dict[str, Head]]:
    """Build the run's model: inputs -> augment -> backbone -> one output per head.

    ``spec`` is ``(shape, dtype)`` of one example's input, or a dict of them by input
    name when the backbone's preprocessor produces several inputs (e.g. token ids and
    a padding mask). One head gives a single-output model; several give a dict of
    outputs by head id. A backbone factory that accepts ``preprocessor`` gets the run's
    built preprocessor (e.g. to size its embeddings to the tokenizer's vocabulary).

    Returns:
        The model and its heads by id.
    """
    heads: dict[str, Head] = {}
    for index, chosen in enumerate(run.heads):
        head_id = chosen.config.output_name
        if head_id in STRUCTURAL_LAYERS:
            raise ConfigError(f"model.heads[{index}].id = {head_id!r} is reserved; choose another id.")
        heads[head_id] = build_head(chosen, label_maps[chosen.config.target], index)
    augment = _build_augment(run)
    backbone = _build_backbone(run, spec, preprocessor)
    try:
        inputs = model_inputs(spec)
        features: Any = augment(inputs) if augment is not None else inputs
        features = backbone(features)
    except ValueError as error:
        shown = (
            ", ".join(f"{k}: shape {s} {d}" for k, (s, d) in spec.items())
            if isinstance(spec, dict)
            else f"shape {spec[0]}, dtype {spec[1]}"
        )
        raise DataError(
            f"model.backbone: {run.backbone.component.name} cannot take the features of "
            f"data.source {run.dataset.component.name} (one example: {shown}): {first_line(error)}"
        ) from None
    outputs = {}
    for index, (head_id, head) in enumerate(heads.items()):
        try:
            outputs[head_id] = head.layer(head_id)(features)
        except ValueError as error:
            raise ConfigError(
                f"model.heads[{index}]: head '{head_id}' cannot be built: {first_line(error)}"
            ) from None
    single = len(outputs) == 1
    model = keras.Model(inputs, next(iter(outputs.values())) if single else outputs, name="kplug_model")
    return model, heads


def _soft_loss(head_id: str, head: Head, run: ResolvedRun) -> Any:
    loss = head.soft_loss(run.config.train.label_smoothing)
    if loss is None:
        mixing = ", ".join(c.component.name for c in run.augmentations if is_batch_augmentation(c))
        raise ConfigError(
            f"augment: {mixing} mixes the labels of a batch, but head '{head_id}' "
            f"({type(head).__name__}) cannot learn from mixed (soft) labels. Remove the batch "
            f"augmentation or use a head that supports soft labels (classification, multi-label, regression)."
        )
    return loss


def compile_model(
    model: keras.Model,
    heads: dict[str, Head],
    run: ResolvedRun,
    optimizer: Any = None,
    soft: bool = False,
    padded: bool = False,
) -> None:
    """Compile ``model`` with every head's loss, metrics and loss weight.

    One head compiles single-output; several compile per output name. ``soft``
    compiles for one-hot (possibly mixed) class targets. ``train.compile`` gives
    ``jit_compile`` and ``steps_per_execution`` (``kplug.model.compile_options``).
    ``padded``: batches may carry zero-weight padding rows, which the metrics skip
    (``kplug.data.padding``).
    """
    label_smoothing = run.config.train.label_smoothing
    if soft:
        losses = {head_id: _soft_loss(head_id, head, run) for head_id, head in heads.items()}
        metrics = {head_id: head_metrics(head, soft=True) for head_id, head in heads.items()}
    else:
        losses = {head_id: head.loss(label_smoothing) for head_id, head in heads.items()}
        metrics = {head_id: head_metrics(head) for head_id, head in heads.items()}
    speed = compile_options(run.config)  # train.compile: jit_compile, steps_per_execution
    kind = "metrics"
    if padded:  # weighted metrics see the sample weights; RealRows turns them into a 0/1 mask
        kind = "weighted_metrics"
        metrics = {head_id: [RealRows(m) for m in listed] for head_id, listed in metrics.items()}
    if len(heads) == 1:
        model.compile(
            optimizer=optimizer,
            loss=next(iter(losses.values())),
            **{kind: next(iter(metrics.values()))},
            **speed,
        )
        return
    weights = {chosen.config.output_name: chosen.config.loss_weight for chosen in run.heads}
    model.compile(optimizer=optimizer, loss=losses, loss_weights=weights, **{kind: metrics}, **speed)


def logged_metric_names(heads: dict[str, Head], validation: bool) -> list[str]:
    """The names Keras logs for these heads: ``loss``, ``accuracy`` or ``<head>_accuracy``, ..."""
    if len(heads) == 1:
        names = ["loss", *(metric.name for metric in head_metrics(next(iter(heads.values()))))]
    else:
        names = ["loss"]
        for head_id, head in heads.items():
            names += [f"{head_id}_loss", *(f"{head_id}_{metric.name}" for metric in head_metrics(head))]
    return names + [f"val_{name}" for name in names] if validation else names
