"""Put a run's augmentations, backbone and heads together into one ``keras.Model``."""

from __future__ import annotations

from typing import Any

import keras

from kplug.errors import ConfigError, DataError, PluginError
from kplug.head import Head
from kplug.labels import LabelMap
from kplug.resolve import ChosenHead, ResolvedRun, call_factory, first_line
from kplug.transfer import STRUCTURAL_LAYERS


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
    return head


def _build_backbone(run: ResolvedRun, input_shape: tuple[int, ...]) -> keras.layers.Layer:
    backbone = run.backbone.build(input_shape=input_shape)
    if not isinstance(backbone, keras.layers.Layer):
        raise PluginError(
            f"Backbone '{run.backbone.component.name}' ({run.backbone.component.provider}) returned "
            f"{type(backbone).__name__}; a backbone factory must return a keras.Model or layer."
        )
    backbone.name = "backbone"
    return backbone


def _build_augment(run: ResolvedRun) -> keras.layers.Layer | None:
    layers = []
    for index, chosen in enumerate(run.augmentations):
        layer = chosen.build()
        if not isinstance(layer, keras.layers.Layer):
            raise PluginError(
                f"Augmentation '{chosen.component.name}' (augment[{index}]) returned "
                f"{type(layer).__name__}; an augmentation factory must return a keras layer."
            )
        layers.append(layer)
    return keras.Sequential(layers, name="augment") if layers else None


def build_model(
    run: ResolvedRun, input_shape: tuple[int, ...], input_dtype: str, label_maps: dict[str, LabelMap]
) -> tuple[keras.Model, dict[str, Head]]:
    """Build the run's model: inputs -> augment -> backbone -> one output per head.

    One head gives a single-output model; several give a dict of outputs by head id.

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
    backbone = _build_backbone(run, input_shape)
    try:
        inputs = keras.Input(input_shape, dtype=input_dtype, name="inputs")
        features: Any = augment(inputs) if augment is not None else inputs
        features = backbone(features)
    except ValueError as error:
        raise DataError(
            f"model.backbone: {run.backbone.component.name} cannot take the features of "
            f"data.source {run.dataset.component.name} (one example: shape {input_shape}, "
            f"dtype {input_dtype}): {first_line(error)}"
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


def compile_model(
    model: keras.Model, heads: dict[str, Head], run: ResolvedRun, optimizer: Any = None
) -> None:
    """Compile ``model`` with every head's loss, metrics and loss weight.

    One head compiles single-output; several compile per output name.
    """
    label_smoothing = run.config.train.label_smoothing
    losses = {head_id: head.loss(label_smoothing) for head_id, head in heads.items()}
    metrics = {head_id: head.metrics() for head_id, head in heads.items()}
    if len(heads) == 1:
        model.compile(
            optimizer=optimizer, loss=next(iter(losses.values())), metrics=next(iter(metrics.values()))
        )
        return
    weights = {chosen.config.output_name: chosen.config.loss_weight for chosen in run.heads}
    model.compile(optimizer=optimizer, loss=losses, metrics=metrics, loss_weights=weights)


def logged_metric_names(heads: dict[str, Head], validation: bool) -> list[str]:
    """The names Keras logs for these heads: ``loss``, ``accuracy`` or ``<head>_accuracy``, ..."""
    if len(heads) == 1:
        names = ["loss", *(metric.name for metric in next(iter(heads.values())).metrics())]
    else:
        names = ["loss"]
        for head_id, head in heads.items():
            names += [f"{head_id}_loss", *(f"{head_id}_{metric.name}" for metric in head.metrics())]
    return names + [f"val_{name}" for name in names] if validation else names
