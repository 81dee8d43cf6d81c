"""Transfer-learning utilities: stable layer/variable paths, freezing by pattern, init from checkpoints.

Paths are built from layer names, not Keras' build-time variable paths (which
depend on the order models were created in), so a path is the same in the run
that saved a model and the run that loads it: ``backbone/conv1/kernel``,
``heads/digits/logits/bias``.
"""

from __future__ import annotations

import fnmatch
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import keras

from kplug.errors import CheckpointError, ConfigError
from kplug.rundir import MODEL_FILE

STRUCTURAL_LAYERS = ("inputs", "augment", "backbone")


def _children(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def top_level_path(layer: keras.layers.Layer) -> str:
    """Logical path of a top-level layer of a kplug model: ``backbone`` or ``heads/<id>``."""
    return layer.name if layer.name in STRUCTURAL_LAYERS else f"heads/{layer.name}"


def iter_layers(model: keras.Model) -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yield ``(path, layer)`` for every layer below the model's top level, parents first."""

    def walk(layer: keras.layers.Layer, path: str) -> Iterator[tuple[str, keras.layers.Layer]]:
        yield path, layer
        for child in _children(layer):
            yield from walk(child, f"{path}/{child.name}")

    for layer in model.layers:
        yield from walk(layer, top_level_path(layer))


def variable_paths(model: keras.Model) -> dict[str, keras.Variable]:
    """Every variable of a kplug model by its stable logical path."""
    paths: dict[str, keras.Variable] = {}
    for path, layer in iter_layers(model):
        nested = {id(v) for child in _children(layer) for v in child.weights}
        for variable in layer.weights:
            if id(variable) not in nested:
                paths[f"{path}/{variable.name}"] = variable
    return paths


def set_trainable(model: keras.Model, patterns: str | list[str]) -> list[str]:
    """Make only the layers matching glob ``patterns`` trainable (``"all"``: every layer).

    A pattern matches a layer path (``heads/*``, ``backbone/conv2``); a matched
    layer is trainable with everything inside it. Frozen BatchNormalization
    layers run in inference mode (the Keras fine-tuning convention).

    Returns:
        The paths of the layers made trainable.

    Raises:
        ConfigError: a pattern that matches no layer (listing the layer paths).
    """
    layers = list(iter_layers(model))
    if patterns == "all":
        model.trainable = True
        for _, layer in layers:
            layer.trainable = True
        return [top_level_path(layer) for layer in model.layers if layer.weights]
    matched: set[str] = set()
    for pattern in patterns:
        hits = [path for path, _ in layers if fnmatch.fnmatchcase(path, pattern)]
        if not hits:
            shown = ", ".join(path for path, _ in layers[:40])
            raise ConfigError(
                f"train.stages: trainable pattern {pattern!r} matches no layer. Layer paths: {shown}."
            )
        matched.update(hits)
    model.trainable = True
    chosen = []
    for path, layer in layers:
        inside = any(path == m or path.startswith(m + "/") for m in matched)
        above = any(m.startswith(path + "/") for m in matched)
        # containers above a trainable layer stay trainable so the flag reaches it
        layer.trainable = inside or above
        if inside and not any(path.startswith(c + "/") for c in chosen):
            chosen.append(path)
    return chosen


@dataclass
class InitReport:
    """What ``init_from_checkpoint`` did to each variable."""

    source: str
    initialised: dict[str, str] = field(default_factory=dict)
    shape_mismatch: dict[str, str] = field(default_factory=dict)
    left_new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Counts and names for ``report.json``."""
        return {
            "source": self.source,
            "initialised": len(self.initialised),
            "shape_mismatch": self.shape_mismatch,
            "left_new": self.left_new,
            "unused_in_source": len(self.unused),
        }


def _checkpoint_file(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(
            f"model.backbone.init.from = {source!r}: no model file there (expected a run "
            f"directory with model.keras, or a .keras file)."
        )
    return path


def load_model_file(path: Path) -> keras.Model:
    """Load a ``.keras`` file safely (no code runs; Lambda layers are refused)."""
    if path.suffix != ".keras":
        raise CheckpointError(f"{path}: expected a .keras model file.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a valid .keras archive (not a zip file, or truncated).")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise CheckpointError(
            f"{path}: cannot load this model file ({type(error).__name__}: {error})."
        ) from None


def _source_path(target: str, assignment_map: dict[str, str]) -> str | None:
    if not assignment_map:
        return target
    for pattern, replacement in assignment_map.items():
        if re.fullmatch(pattern, target):
            return re.sub(pattern, replacement, target)
    return None


def init_from_checkpoint(model: keras.Model, source: str, assignment_map: dict[str, str]) -> InitReport:
    """Copy variables from a saved model into ``model`` by logical path.

    Args:
        model: the freshly built kplug model.
        source: a run directory (its ``model.keras``) or a ``.keras`` file.
        assignment_map: regex rules ``target path -> source path`` (``\\1`` groups);
            empty means every target takes the source variable of the same path.

    Returns:
        An ``InitReport`` listing initialised, shape-mismatched and new variables.
    """
    for pattern, replacement in assignment_map.items():
        try:
            groups = re.compile(pattern).groups
        except re.error as error:
            raise ConfigError(
                f"model.backbone.init.map: {pattern!r} is not a valid regex ({error})."
            ) from None
        used = [int(n) for n in re.findall(r"\\(\d+)", replacement)]
        if any(n > groups for n in used):
            raise ConfigError(
                f"model.backbone.init.map: the replacement {replacement!r} of {pattern!r} refers to "
                f"group {max(used)}, but the pattern has {groups} group(s)."
            )
    path = _checkpoint_file(source)
    source_variables = variable_paths(load_model_file(path))
    report = InitReport(str(path))
    used: set[str] = set()
    for target, variable in variable_paths(model).items():
        origin = _source_path(target, assignment_map)
        if origin is None or origin not in source_variables:
            report.left_new.append(target)
            continue
        value = source_variables[origin]
        if tuple(value.shape) != tuple(variable.shape):
            report.shape_mismatch[target] = (
                f"{origin}: source {tuple(value.shape)} vs {tuple(variable.shape)}"
            )
            continue
        variable.assign(keras.ops.convert_to_numpy(value))
        report.initialised[target] = origin
        used.add(origin)
    report.unused = sorted(set(source_variables) - used)
    if not any(target.startswith("backbone/") for target in report.initialised):
        backbone_paths = [p for p in variable_paths(model) if p.startswith("backbone/")]
        raise CheckpointError(
            f"model.backbone.init: no backbone variable was initialised from {path} "
            f"(map: {assignment_map or 'same paths'}). Source paths: {', '.join(list(source_variables)[:8])}; "
            f"backbone paths: {', '.join(backbone_paths[:8])}. Paths follow layer names: give the "
            f"backbone's layers explicit names (automatic ones such as dense_1 depend on how many "
            f"models the process built before)."
        )
    return report
