"""Initialise a model from a checkpoint by stable variable path, and load ``.keras`` files safely.

Variables are matched by the stable paths of ``kplug.model.paths``
(``backbone/conv1/kernel``, ``heads/digits/logits/bias``), optionally rewritten by
``model.backbone.init.map`` (target-path regex -> source path with ``\\1`` groups).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from kplug.errors import CheckpointError, ConfigError, first_line
from kplug.model.paths import variable_paths
from kplug.train.rundir import MODEL_FILE


@dataclass
class InitReport:
    """What ``init_from_checkpoint`` did to each target variable, and what the source had left over."""

    source: str
    initialised: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    left_new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Every target variable as initialised (from which source path), skipped (why) or new."""
        return {
            "source": self.source,
            "initialised": dict(self.initialised),
            "skipped": dict(self.skipped),
            "left_new": list(self.left_new),
            "unused_in_source": list(self.unused),
        }

    def describe(self) -> str:
        """One line for the console."""
        return (
            f"Initialised {len(self.initialised)} variables from {self.source}; "
            f"{len(self.skipped)} skipped (shape mismatch), {len(self.left_new)} new, "
            f"{len(self.unused)} source variables unused (details in report.json under 'init')."
        )


SOURCE_KINDS = (
    "a run directory, a .keras model, a .weights.h5 file, an .npz archive or a directory of .npy files"
)


def load_model_file(path: Path) -> keras.Model:
    """Load a ``.keras`` file safely (no code runs; Lambda layers are refused)."""
    if path.suffix != ".keras":
        raise CheckpointError(f"{path}: expected a .keras model file.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a valid .keras archive (not a zip file, or truncated).")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        if "safe_mode" in str(error):  # Keras refuses Lambda layers (Python code) in safe mode
            raise CheckpointError(
                f"{path}: the model holds Python code (a Lambda layer or a pickled function); kplug "
                f"loads models in Keras' safe mode and never runs code from a file. Rebuild the model "
                f"from registered layers."
            ) from None
        raise CheckpointError(
            f"{path}: cannot load this model file ({type(error).__name__}: {first_line(error)})."
        ) from None


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    """A Keras ``.weights.h5`` file's arrays by path (``backbone/conv1/0``: Keras stores no variable names)."""
    import h5py

    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as handle:

            def visit(name: str, item: object) -> None:
                if isinstance(item, h5py.Dataset):
                    parts = [p for p in name.split("/") if p not in ("layers", "vars")]
                    arrays["/".join(parts)] = np.asarray(item)

            handle.visititems(visit)
    except OSError as error:
        raise CheckpointError(f"{path}: not a readable .weights.h5 file ({error}).") from None
    return arrays


def _npy_arrays(root: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for file in sorted(root.rglob("*.npy")):
        try:
            arrays[file.relative_to(root).with_suffix("").as_posix()] = np.load(file, allow_pickle=False)
        except ValueError as error:
            raise CheckpointError(
                f"{file}: not a plain .npy array ({error}); pickled arrays are refused."
            ) from None
    return arrays


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path}: not a readable .npz archive of plain arrays ({error}).") from None


def read_source_variables(source: str) -> tuple[Path, dict[str, np.ndarray]]:
    """Every variable of an init source by path, without running code or unpickling.

    Sources: a kplug run directory or ``.keras`` file (stable logical paths such as
    ``backbone/conv1/kernel``), a ``.weights.h5`` file (Keras' own layer paths and
    variable indices, ``sequential/dense/0``), an ``.npz`` archive or a directory of
    ``.npy`` files named by path (``backbone/conv1/kernel.npy``).
    """
    path = Path(source)
    if path.is_dir() and (path / MODEL_FILE).is_file():
        path = path / MODEL_FILE
    if path.is_dir() and any(path.rglob("*.npy")):
        return path, _npy_arrays(path)
    if not path.is_file():
        raise CheckpointError(
            f"model.backbone.init.from = {source!r}: nothing to load there; expected {SOURCE_KINDS}."
        )
    if path.name.endswith(".weights.h5"):
        return path, _h5_arrays(path)
    if path.suffix == ".npz":
        return path, _npz_arrays(path)
    if path.suffix == ".keras":
        model = load_model_file(path)
        return path, {p: keras.ops.convert_to_numpy(v) for p, v in variable_paths(model).items()}
    raise CheckpointError(
        f"model.backbone.init.from = {source!r}: unknown file type; expected {SOURCE_KINDS}."
    )


def _source_path(target: str, assignment_map: dict[str, str]) -> str | None:
    if not assignment_map:
        return target
    for pattern, replacement in assignment_map.items():
        if re.fullmatch(pattern, target):
            return re.sub(pattern, replacement, target)
    return None


def _check_map(assignment_map: dict[str, str]) -> None:
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


def init_from_checkpoint(
    model: keras.Model, source: str, assignment_map: dict[str, str], strict: bool = False
) -> InitReport:
    """Copy variables from a saved model or arrays into ``model`` by logical path.

    Args:
        model: the freshly built kplug model.
        source: see ``read_source_variables``.
        assignment_map: regex rules ``target path -> source path`` (``\\1`` groups);
            empty means every target takes the source variable of the same path.
        strict: fail instead of skipping a shape mismatch or leaving a backbone variable new.

    Returns:
        An ``InitReport``. Skipped and new variables keep their fresh initialisation.
    """
    _check_map(assignment_map)
    path, source_variables = read_source_variables(source)
    report = InitReport(str(path))
    targets = variable_paths(model)
    matched_rules: set[str] = set()
    for target, variable in targets.items():
        origin = _source_path(target, assignment_map)
        if origin is not None:
            matched_rules.update(p for p in assignment_map if re.fullmatch(p, target))
        if origin is None or origin not in source_variables:
            report.left_new.append(target)
            continue
        value = source_variables[origin]
        if tuple(value.shape) != tuple(variable.shape):
            report.skipped[target] = (
                f"{origin}: source shape {tuple(value.shape)}, target {tuple(variable.shape)}"
            )
            continue
        variable.assign(value)
        report.initialised[target] = origin
    report.unused = sorted(set(source_variables) - set(report.initialised.values()))
    unmatched = [p for p in assignment_map if p not in matched_rules]
    if unmatched:
        raise ConfigError(
            f"model.backbone.init.map: rule(s) {', '.join(map(repr, unmatched))} match no variable of the "
            f"model. Variable paths: {', '.join(list(targets)[:10])}, ..."
        )
    backbone_new = [t for t in report.left_new if t.startswith("backbone/")]
    if strict and (report.skipped or backbone_new):
        problems = [f"{t} ({why})" for t, why in report.skipped.items()] + [
            f"{t} (no source)" for t in backbone_new
        ]
        raise CheckpointError(
            f"model.backbone.init (strict): {len(problems)} variable(s) not initialised from {path}: "
            f"{'; '.join(problems[:8])}."
        )
    if not any(target.startswith("backbone/") for target in report.initialised):
        backbone_paths = [p for p in targets if p.startswith("backbone/")]
        raise CheckpointError(
            f"model.backbone.init: no backbone variable was initialised from {path} "
            f"(map: {assignment_map or 'same paths'}). Source paths: {', '.join(list(source_variables)[:8])}; "
            f"backbone paths: {', '.join(backbone_paths[:8])}. Paths follow layer names: give the "
            f"backbone's layers explicit names (automatic ones such as dense_1 depend on how many "
            f"models the process built before), or map them with model.backbone.init.map."
        )
    return report
