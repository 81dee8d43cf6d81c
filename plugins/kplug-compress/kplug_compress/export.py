"""Export a finished run as a TensorFlow SavedModel, an ONNX file or a ``.keras`` file.

A run's ``model.keras`` is backend-neutral, so kplug exports from a run trained on any
backend: SavedModel and ONNX are written under the tensorflow backend (Keras 3.15 cannot
write a SavedModel from torch and needs tf2onnx/jax2onnx for ONNX from the others), in a
subprocess when another backend is active. The export is then checked: the exported
artifact and the in-memory Keras model predict the same random probe batch, and the
largest difference is recorded in ``export.json`` next to it (and must stay under
``tolerance``). A model trained in mixed precision is exported as a float32 copy (the same
float32 weights computing in float32, see ``kplug_compress.float32``): onnxruntime refuses
the graph of a bfloat16 model, and CPU runtimes compute in float32 anyway. ``export.json``
records it under ``precision``.

Example::

    from kplug_compress.export import export_run
    result = export_run("runs/digits", "onnx")     # runs/digits/export/model.onnx
    result.path, result.max_abs_diff

or ``kplug export runs/digits --format onnx``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from kplug import plugin
from kplug.plugin import CheckpointError, ConfigError, PluginError, load_model_file

from kplug_compress.float32 import float32_copy, precision_note

FORMATS = ("saved_model", "onnx", "keras")
EXPORT_DIR = "export"
EXPORT_REPORT = "export.json"
PROBE_ROWS = 8
# What each format needs installed, as (import name, pip name).
REQUIREMENTS = {
    "saved_model": (("tensorflow", "tensorflow"),),
    "onnx": (("tensorflow", "tensorflow"), ("tf2onnx", "tf2onnx"), ("onnx", "onnx")),
    "keras": (),
}
DEFAULT_NAMES = {"saved_model": "saved_model", "onnx": "model.onnx", "keras": "model.keras"}


@dataclass
class ExportResult:
    """What ``export_run`` wrote and how closely the export matches the Keras model.

    Attributes:
        format: ``saved_model``, ``onnx`` or ``keras``.
        path: the exported file or directory.
        backend: the Keras backend that wrote it.
        trained_backend: the backend of the process that asked for the export.
        max_abs_diff: largest absolute difference between the exported artifact's and the
            in-memory Keras model's outputs on the probe batch (``None``: not checked).
        probe_rows: rows in the probe batch.
        precision: the model's precision (``model``) and the one exported (``written_as``).
    """

    format: str
    path: Path
    backend: str
    trained_backend: str
    max_abs_diff: float | None
    probe_rows: int
    precision: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields."""
        return {**asdict(self), "path": str(self.path)}


def check_requirements(fmt: str) -> None:
    """Raise ``PluginError`` naming what to install when ``fmt`` cannot be exported here."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}.")
    missing = [pip for module, pip in REQUIREMENTS[fmt] if importlib.util.find_spec(module) is None]
    if missing:
        raise PluginError(
            f"kplug export --format {fmt} needs {', '.join(missing)}, which is not installed: "
            f"`pip install {' '.join(missing)}` (or `pip install kplug-compress[export]`). The run is "
            f"reloaded under the tensorflow backend to write {fmt}, whatever backend trained it."
        )


def probe_inputs(model: keras.Model, rows: int = PROBE_ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """A seeded random batch matching every model input, keyed by input name."""
    rng = np.random.default_rng(seed)
    batch = {}
    for tensor in model.inputs:
        shape = (rows, *[1 if size is None else size for size in tensor.shape[1:]])
        dtype = np.dtype(keras.backend.standardize_dtype(tensor.dtype))
        if np.issubdtype(dtype, np.floating):
            batch[tensor.name] = rng.normal(size=shape).astype(dtype)
        else:
            batch[tensor.name] = rng.integers(0, 2, size=shape).astype(dtype)
    return batch


def _feed(model: keras.Model, batch: dict[str, np.ndarray]) -> Any:
    arrays = [batch[tensor.name] for tensor in model.inputs]
    return arrays[0] if len(arrays) == 1 else arrays


def keras_outputs(model: keras.Model, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs on ``batch`` as ``{output name: array}``."""
    outputs = model(_feed(model, batch), training=False)
    if isinstance(outputs, dict):
        return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {
        name: keras.ops.convert_to_numpy(value)
        for name, value in zip(model.output_names, outputs, strict=True)
    }


def artifact_outputs(
    fmt: str, path: Path, model: keras.Model, batch: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """Run the exported artifact on ``batch``; ``None`` when its runtime is not installed."""
    names = list(model.output_names)
    if fmt == "keras":
        return keras_outputs(load_model_file(path), batch)
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        outputs = loaded.serve(_feed(model, batch))
    else:
        if importlib.util.find_spec("onnxruntime") is None:
            return None
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {
            given.name: batch[tensor.name]
            for given, tensor in zip(session.get_inputs(), model.inputs, strict=True)
        }
        results = session.run(None, feeds)
        produced = [given.name for given in session.get_outputs()]
        outputs = dict(zip(produced, results, strict=True)) if set(produced) == set(names) else results
    if isinstance(outputs, dict):
        return {name: np.asarray(outputs[name]) for name in names}
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {name: np.asarray(value) for name, value in zip(names, outputs, strict=True)}


def max_difference(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> float:
    """Largest absolute difference between two ``{output: array}`` dicts with the same outputs."""
    if set(left) != set(right):
        raise CheckpointError(f"the export has outputs {sorted(right)}; the model has {sorted(left)}.")
    return max(float(np.max(np.abs(left[name] - right[name]))) for name in left)


def _write_artifact(model: keras.Model, fmt: str, path: Path) -> None:
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "keras":
        plugin.save_model(model, path)
    else:
        model.export(str(path), format="tf_saved_model" if fmt == "saved_model" else "onnx", verbose=False)


def export_model(model: keras.Model, fmt: str, path: Path) -> dict[str, np.ndarray] | None:
    """Write ``model`` as ``fmt`` at ``path`` with the active backend; return its probe outputs.

    Needs the tensorflow backend for ``saved_model`` and ``onnx``.
    """
    batch = probe_inputs(model)
    keras_outputs(model, batch)  # Keras' ONNX export refuses a model that was never called
    _write_artifact(model, fmt, path)
    return artifact_outputs(fmt, path, model, batch)


def _export_in_subprocess(model_file: Path, fmt: str, path: Path) -> dict[str, np.ndarray] | None:
    """Reload ``model_file`` under the tensorflow backend in a fresh Python and export it there."""
    with tempfile.TemporaryDirectory(prefix="kplug-export-") as scratch:
        outputs_file = Path(scratch) / "outputs.npz"
        code = "import sys; from kplug_compress.export import worker; worker(sys.argv[1:])"
        command = [sys.executable, "-c", code, str(model_file), fmt, str(path), str(outputs_file)]
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise PluginError(
                f"exporting {model_file} as {fmt} under the tensorflow backend failed: "
                + (lines[-1] if lines else f"exit code {done.returncode}")
            )
        if not outputs_file.is_file():
            return None
        with np.load(outputs_file) as saved:
            return {name: saved[name] for name in saved.files}


def export_run(
    run_dir: str | Path,
    fmt: str,
    output: str | Path | None = None,
    tolerance: float = 1e-4,
    model: keras.Model | None = None,
) -> ExportResult:
    """Export a finished run and check the export predicts what the Keras model predicts.

    Args:
        run_dir: a run directory written by ``kplug train`` (it holds ``model.keras``).
        fmt: ``saved_model``, ``onnx`` or ``keras``.
        output: where to write (default ``RUN_DIR/export/saved_model|model.onnx|model.keras``).
        tolerance: largest allowed absolute difference between the export's and the Keras
            model's outputs on a random probe batch.
        model: the in-memory model to compare with (default: ``model.keras`` loaded here); a
            mixed-precision model is exported, and compared, as its float32 copy.

    Returns:
        An ``ExportResult``; the same facts are written to ``export.json`` next to the export.

    Raises:
        ConfigError: an unknown format.
        PluginError: the format's dependencies are missing, or the export failed.
        CheckpointError: not a run directory, or the export's predictions differ.
    """
    check_requirements(fmt)
    run_path = Path(run_dir)
    model_file = run_path / plugin.MODEL_FILE
    if not model_file.is_file():
        raise CheckpointError(
            f"{str(run_path)!r} is not a finished kplug run directory: {plugin.MODEL_FILE} is missing."
        )
    path = Path(output) if output is not None else run_path / EXPORT_DIR / DEFAULT_NAMES[fmt]
    suffix = {"keras": ".keras", "onnx": ".onnx"}.get(fmt)
    if suffix and path.suffix != suffix:
        raise ConfigError(f"--output {str(path)!r}: a {fmt} export is a file ending in {suffix}.")
    model = model if model is not None else load_model_file(model_file)
    precision = precision_note(model)
    model = float32_copy(model)  # what is exported, and what the export is checked against
    backend = keras.backend.backend()
    if fmt == "keras" or backend == "tensorflow":
        exported = export_model(model, fmt, path)
        writer = backend
    else:
        exported = _export_in_subprocess(model_file, fmt, path)
        writer = "tensorflow"
    difference = None
    if exported is not None:
        difference = max_difference(keras_outputs(model, probe_inputs(model)), exported)
        if difference > tolerance:
            raise CheckpointError(
                f"the {fmt} export at {path} predicts differently from the Keras model: largest "
                f"difference {difference:.3g} on a probe batch (tolerance {tolerance:g})."
            )
    result = ExportResult(fmt, path, writer, backend, difference, PROBE_ROWS, precision)
    report = path.parent / EXPORT_REPORT
    entries = json.loads(report.read_text()) if report.is_file() else {}
    plugin.write_json(report, {**entries, fmt: result.to_dict()})
    return result


def _cli_export(args: argparse.Namespace) -> int:
    result = export_run(args.run_dir, args.format, output=args.output, tolerance=args.tolerance)
    checked = (
        "not checked (onnxruntime is not installed)"
        if result.max_abs_diff is None
        else f"matches the Keras model to {result.max_abs_diff:.2g}"
    )
    print(f"Exported {result.format} to {result.path} with the {result.backend} backend; {checked}.")
    return 0


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """Add ``kplug export RUN_DIR --format saved_model|onnx|keras``."""
    command = commands.add_parser("export", help="export a finished run (SavedModel, ONNX or .keras)")
    command.add_argument("run_dir", help="run directory written by kplug train")
    command.add_argument("--format", required=True, choices=FORMATS)
    command.add_argument("--output", help="file or directory to write (default RUN_DIR/export/...)")
    command.add_argument(
        "--tolerance", type=float, default=1e-4, help="largest allowed difference from the Keras model"
    )
    command.set_defaults(handler=_cli_export)


def worker(argv: list[str]) -> None:
    """The subprocess side of ``export_run``: ``[MODEL_FILE, FORMAT, PATH, OUTPUTS_NPZ]``."""
    from kplug import load_plugins

    model_file, fmt, path, outputs_file = argv
    try:
        load_plugins()  # plugins may define the custom layers the model file names
    except PluginError:
        pass  # a broken plugin is reported by `kplug doctor`; loading names any layer it misses
    outputs = export_model(float32_copy(load_model_file(Path(model_file))), fmt, Path(path))
    if outputs is not None:
        np.savez(outputs_file, **outputs)
