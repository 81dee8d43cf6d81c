"""Choose what a training stage trains: layer-path patterns, the backbone's last blocks, BatchNorm policy.

Patterns are the dialect of ``kplug.model.paths``: globs or ``re:`` regexes over the
stable layer paths (``backbone/conv2``, ``heads/digits``). A matched layer trains
(or stays frozen) with everything inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import keras

from kplug.config.schema import StageConfig
from kplug.errors import ConfigError
from kplug.model.paths import iter_layers, matching_layers, top_level_path


@dataclass(frozen=True)
class TrainableSet:
    """What one stage trains, as ``train.stages[i]`` chooses it (read by ``apply_stage_trainable``).

    Attributes:
        trainable: ``"all"``, or layer-path patterns (globs, or regexes written ``re:...``).
        frozen: patterns of layers frozen after ``trainable`` is applied.
        train_last_blocks: train only the backbone's last N blocks and the heads (``None``: unused).
        batchnorm: frozen BatchNormalization layers run in ``"inference"`` or ``"train"`` mode.
    """

    trainable: Literal["all"] | tuple[str, ...] = "all"
    frozen: tuple[str, ...] = ()
    train_last_blocks: int | None = None
    batchnorm: Literal["inference", "train"] = "inference"

    @classmethod
    def of_stage(cls, stage: StageConfig) -> TrainableSet:
        """The trainable set a stage's config describes."""
        trainable = stage.trainable if stage.trainable == "all" else tuple(stage.trainable)
        return cls(trainable, tuple(stage.frozen), stage.train_last_blocks, stage.batchnorm)


def backbone_blocks(model: keras.Model) -> list[str]:
    """The backbone's blocks, input to output: its top-level layers that hold weights."""
    backbone = model.get_layer("backbone")
    children = backbone._flatten_layers(include_self=False, recursive=False)
    return [f"backbone/{layer.name}" for layer in children if layer.weights]


def _inside(path: str, roots: set[str]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _trained_roots(
    model: keras.Model, stage: TrainableSet | StageConfig, where: str, paths: list[str]
) -> set[str]:
    heads = {top_level_path(layer) for layer in model.layers if top_level_path(layer).startswith("heads/")}
    if stage.train_last_blocks is not None:
        blocks = backbone_blocks(model)
        if stage.train_last_blocks > len(blocks):
            raise ConfigError(
                f"{where}.train_last_blocks = {stage.train_last_blocks}: the backbone has "
                f"{len(blocks)} blocks ({', '.join(blocks)})."
            )
        return heads | set(blocks[len(blocks) - stage.train_last_blocks :])
    if stage.trainable == "all":
        return {top_level_path(layer) for layer in model.layers if layer.weights}
    return matching_layers(paths, stage.trainable, f"{where}.trainable")


def apply_stage_trainable(
    model: keras.Model, stage: TrainableSet | StageConfig, where: str = "train.stages[0]"
) -> list[str]:
    """Set every layer's ``trainable`` flag for one stage (a ``TrainableSet`` or the stage's config).

    Frozen BatchNormalization layers follow ``stage.batchnorm``: ``inference`` (frozen
    layers normalise with their moving statistics) or ``train`` (batch statistics and
    moving-average updates continue; gamma and beta stay fixed).

    Returns:
        The outermost trained layer paths, for the report.

    Raises:
        ConfigError: a pattern that matches no layer, or a stage that trains nothing.
    """
    layers = list(iter_layers(model))
    paths = [path for path, _ in layers]
    roots = _trained_roots(model, stage, where, paths)
    frozen = matching_layers(paths, stage.frozen, f"{where}.frozen") if stage.frozen else set()
    trained = {
        path
        for path in paths
        if _inside(path, roots)
        and not _inside(path, frozen)
        and not any(f.startswith(path + "/") for f in frozen)  # a container of a frozen layer
    }
    model.trainable = True
    for path, layer in layers:  # parents come first; Keras' setter also sets the children and variables
        above = any(t.startswith(path + "/") for t in trained)
        layer.trainable = path in trained or above
    if stage.batchnorm == "train":
        for path, layer in layers:
            if isinstance(layer, keras.layers.BatchNormalization) and path not in trained:
                layer.trainable = True  # batch statistics and moving-average updates
                for variable in (getattr(layer, "gamma", None), getattr(layer, "beta", None)):
                    if variable is not None:
                        variable.trainable = False
    if not model.trainable_weights:
        raise ConfigError(f"{where}: this stage trains no variable (every matched layer is frozen).")
    weighted = {path for path, layer in layers if layer.weights}
    return sorted(
        path for path in trained & weighted if not any(path.startswith(t + "/") for t in trained & weighted)
    )
