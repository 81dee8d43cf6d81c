"""Use a finished run: predict per example and evaluate on a split or a new file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug.backend.jax_compile_cache import use_jax_compilation_cache
from kplug.config.load import load_config
from kplug.data.categories import as_categories
from kplug.data.example_set import Examples
from kplug.data.inputs import (
    PreparedData,
    build_preprocessor,
    head_targets,
    model_inputs,
    prepare_data,
    with_categories,
)
from kplug.data.labels import LabelMap
from kplug.data.sources import read_all
from kplug.errors import CheckpointError, DataError
from kplug.inference.records import flat_records, head_fields, with_truth
from kplug.model.assembly import build_head, compile_model
from kplug.model.checkpoint_init import load_model_file
from kplug.plugin.head import Head
from kplug.plugin.manager import Plugins, get_plugins
from kplug.plugin.options import validate_options
from kplug.plugin.resolve import ResolvedRun, resolve
from kplug.train import rundir
from kplug.train.storage import RemoteRunDir, is_url


@dataclass
class LoadedRun:
    """A finished run directory: its resolved config, model, heads and label maps."""

    run: ResolvedRun
    model: keras.Model
    heads: dict[str, Head]
    label_maps: dict[str, LabelMap]
    categories: dict[str, list[str]] = field(default_factory=dict)  # one-hot text columns


def load_run(run_dir: str | Path, plugins: Plugins | list[Any] | None = None) -> LoadedRun:
    """Load a run directory written by ``kplug train`` (no code is executed); a URL is downloaded first."""
    use_jax_compilation_cache()  # before anything compiles
    if is_url(run_dir):
        run_dir = RemoteRunDir(str(run_dir), "run directory").pull()
    path = Path(run_dir)
    for name in (rundir.CONFIG_FILE, rundir.MODEL_FILE, rundir.LABELS_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{str(path)!r} is not a finished kplug run directory: {name} is missing.")
    plugins = get_plugins(plugins)
    config = load_config(path / rundir.CONFIG_FILE)
    # loggers only record training: evaluating needs no logger plugin installed
    run = resolve(config.model_copy(update={"loggers": []}), plugins)
    maps = _read_label_maps(path / rundir.LABELS_FILE, run)
    heads = {h.config.output_name: build_head(h, maps[h.config.target], i) for i, h in enumerate(run.heads)}
    model = load_model_file(path / rundir.MODEL_FILE)
    _check_outputs(model, heads, path / rundir.MODEL_FILE)
    return LoadedRun(run, model, heads, maps, _read_categories(path / rundir.CATEGORIES_FILE))


def _read_categories(path: Path) -> dict[str, list[str]]:
    """The run's one-hot categories of text feature columns (``categories.json``), if it has any."""
    if not path.is_file():
        return {}
    try:
        return as_categories(json.loads(path.read_text()), str(path))
    except ValueError as error:
        raise CheckpointError(f"{path}: not a kplug categories file ({error}).") from None


def _read_label_maps(path: Path, run: ResolvedRun) -> dict[str, LabelMap]:
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, dict):
            raise ValueError("expected an object {target: label map}")
        maps = {target: LabelMap.from_dict(entry) for target, entry in entries.items()}
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: not a kplug label map ({error}).") from None
    for head in run.heads:
        if head.config.target not in maps:
            raise CheckpointError(
                f"{path}: no entry for target '{head.config.target}' of head '{head.config.output_name}'."
            )
    return maps


def _check_outputs(model: keras.Model, heads: dict[str, Head], path: Path) -> None:
    if len(heads) == 1:
        shapes = {next(iter(heads)): model.output_shape}
    else:  # Keras 3.15 gives a dict-output model's shapes as a list in output_names order
        outputs = model.output_shape
        shapes = (
            outputs if isinstance(outputs, dict) else dict(zip(model.output_names, outputs, strict=False))
        )
    for head_id, head in heads.items():
        shape = shapes.get(head_id)
        if shape is None or shape[-1] != head.output_units():
            raise CheckpointError(
                f"{path} does not match the run's config and labels.json: head '{head_id}' should have "
                f"{head.output_units()} outputs, the model has {None if shape is None else shape[-1]}."
            )


def data_options(run: ResolvedRun, data: Any) -> dict[str, Any] | None:
    """The run's data options with a new file: ``PATH``, ``{option: value}`` or a Python object.

    A plain path (or an object such as a DataFrame) replaces the source's main file option
    (``path_option`` at registration) and clears options naming other files of the training data.
    """
    if data is None:
        return None
    component = run.dataset.component
    options = dict(run.dataset.options)
    cleared = {option: None for option in component.extra("target_options")}
    path_option = component.extra("path_option")
    if isinstance(data, dict):
        # in-memory sources saved only summaries of their arrays: take the new options alone
        # (a source reading a Python object keeps its other options: columns, label);
        # files of the training data's targets are dropped unless given again
        if component.extra("in_memory") and path_option not in data:
            merged = dict(data)
        else:
            kept = {k: v for k, v in options.items() if not _from_python(v)}
            merged = {**kept, **cleared, **data}
        return validate_options(component.name, component.options, merged, "--data")
    if path_option is None:
        raise DataError(
            f"--data: the run's source '{component.name}' reads no file; give options as "
            f"KEY=VALUE ({', '.join(component.options.model_fields)})."
        )
    options.update(cleared)
    options[path_option] = str(data) if isinstance(data, (str, Path)) else data
    return validate_options(component.name, component.options, options, "--data")


def _from_python(value: Any) -> bool:
    """Whether a saved option is the summary of an object given from Python (``<... from Python>``)."""
    return isinstance(value, str) and value.startswith("<") and value.endswith("from Python>")


def _read(loaded: LoadedRun, data: Any, split: str) -> Examples:
    component = loaded.run.dataset.component
    if data is None and component.extra("in_memory"):
        raise DataError(
            f"The run was trained on in-memory data (source '{component.name}'), which is not saved "
            f"in the run directory; pass the examples with data={{...}} "
            f"({', '.join(component.options.model_fields)})."
        )
    if data is None:
        prepared: PreparedData = prepare_data(loaded.run)
        examples = getattr(prepared.splits, split)
        if len(examples) == 0:
            raise DataError(
                f"The run has no {split} split; pass --split train|validation|test or --data FILE."
            )
        return examples
    component = loaded.run.dataset.component
    options = with_categories(component, data_options(loaded.run, data), loaded.categories)
    examples = read_all(component, options)
    if loaded.run.preprocessor is not None:
        return examples  # raw features (e.g. text): the preprocessor checks them
    expected = tuple(loaded.model.input_shape[1:])
    found = tuple(examples.features.shape[1:])
    if len(found) != len(expected) or any(
        e is not None and e != f for e, f in zip(expected, found, strict=False)
    ):
        raise DataError(f"--data: each example has shape {found}; the run's model expects {expected}.")
    return examples


def predict(
    run_dir: str | Path,
    data: Any = None,
    split: str = "test",
    plugins: Plugins | list[Any] | None = None,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Predict every example of a file (or a split of the run's own data).

    ``data`` is a file path, the source's options as a dict, or an object the run's source
    reads (a DataFrame for a run trained on one; its text columns are encoded with the
    run's saved categories).

    Example::

        records = kplug.predict("runs/digits-transfer", split="test")
        records[0]  # {"index": 12, "label": 7, "true_label": 7, "label_id": 2, "probabilities": [...], ...}

    Returns:
        One flat dict per example (``kplug.inference.records``): ``index`` (its row in
        the data source's file or arrays), then per head ``label`` (typed as in the
        data), ``true_label`` when the data has the head's target, ``label_id``,
        ``probabilities`` and ``logits`` (a regression head gives ``value`` and
        ``true_value``). With several heads every field is prefixed with the head id
        (``digits59.label``).
    """
    loaded = load_run(run_dir, plugins)
    examples = _read(loaded, data, split)
    inputs = model_inputs(build_preprocessor(loaded.run), examples.features, "--data")
    outputs = loaded.model.predict(inputs, batch_size=batch_size, verbose=0)
    if not isinstance(outputs, dict):
        outputs = {next(iter(loaded.heads)): outputs}
    per_head: dict[str, dict[str, list[Any]]] = {}
    for chosen in loaded.run.heads:
        head_id = chosen.config.output_name
        head = loaded.heads[head_id]
        logits = np.asarray(outputs[head_id], dtype="float64")
        probabilities = head.probabilities(logits)
        label_map = loaded.label_maps[chosen.config.target]
        fields = head_fields(label_map, logits, probabilities, head.decide(probabilities))
        per_head[head_id] = with_truth(fields, label_map, examples.targets.get(chosen.config.target))
    return flat_records(examples.row_numbers().tolist(), per_head)


@dataclass
class Evaluation:
    """What ``kplug evaluate`` reports: which data, how many examples, every metric.

    Attributes:
        split: the run's split evaluated, or ``None`` for ``--data``.
        data: the ``--data`` file (or ``"options"``), or ``None`` for a split.
        examples: how many examples were evaluated.
        metrics: loss and every head metric, as Keras names them.
    """

    split: str | None
    data: str | None
    examples: int
    metrics: dict[str, float]

    def table(self) -> str:
        """A two-column table: the split (or data file), the example count, then one row per metric."""
        source = ("split", self.split) if self.data is None else ("data", self.data)
        rows = [source, ("examples", str(self.examples))]
        rows += [(name, f"{value:.4f}") for name, value in self.metrics.items()]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluate(
    run_dir: str | Path,
    data: Any = None,
    split: str = "test",
    plugins: Plugins | list[Any] | None = None,
    batch_size: int = 256,
) -> dict[str, float]:
    """Evaluate a finished run on a split of its data or on a new labelled file.

    Returns:
        Loss and every head metric, as Keras ``evaluate`` names them.
    """
    return evaluation(run_dir, data, split, plugins, batch_size).metrics


def evaluation(
    run_dir: str | Path,
    data: Any = None,
    split: str = "test",
    plugins: Plugins | list[Any] | None = None,
    batch_size: int = 256,
) -> Evaluation:
    """``evaluate`` with what was evaluated: the split (or ``--data``) and the number of examples."""
    loaded = load_run(run_dir, plugins)
    examples = _read(loaded, data, split)
    for head in loaded.run.heads:
        if head.config.target not in examples.targets:
            raise DataError(
                f"--data has no labels for target '{head.config.target}'; evaluate needs labelled data."
            )
    targets = head_targets(loaded.run, examples, loaded.label_maps)
    compile_model(loaded.model, loaded.heads, loaded.run)
    inputs = model_inputs(build_preprocessor(loaded.run), examples.features, "--data")
    values = loaded.model.evaluate(inputs, targets, batch_size=batch_size, verbose=0, return_dict=True)
    metrics = {key: float(value) for key, value in values.items()}
    if data is None:
        return Evaluation(split, None, len(examples), metrics)
    return Evaluation(None, _described(data), len(examples), metrics)


def _described(data: Any) -> str:
    """How ``Evaluation.data`` names what was evaluated: the file, the options or the Python object."""
    if isinstance(data, (str, Path)):
        return str(data)
    if isinstance(data, dict):
        return "options " + ", ".join(data)
    return f"<{type(data).__name__} from Python>"
