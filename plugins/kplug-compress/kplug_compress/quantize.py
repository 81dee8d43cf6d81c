"""Post-training quantization of a finished run with ``keras.Model.quantize``, optionally fine-tuned.

``kplug quantize RUN_DIR --mode int8`` (or ``quantize_run``) loads the run's model,
measures it on the validation split, quantizes the weights of every layer Keras can
quantize (Dense, EinsumDense, Embedding in Keras 3.15; convolutions stay float),
optionally fine-tunes what stays trainable (biases, unquantized layers) and writes a
derived run directory ``RUN_DIR/quantized-<mode>/`` holding the quantized
``model.keras``, the run's config and labels and a ``report.json`` with the size and
accuracy before and after. ``kplug evaluate`` and ``kplug predict`` work on it.

A run trained in mixed precision is quantized as a float32 copy (the same float32 weights
computing in float32, see ``kplug_compress.float32``): Keras refuses int8 for a layer that
computes in float16. ``report.json`` records it under ``quantization.precision``.

Fine-tuning compiles the model with a new optimizer: reusing the optimizer built before
quantization fails on jax ("optimizer_variables ... built with N variables"), because
quantization replaces float kernels with non-trainable integer ones.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import kplug
import numpy as np
from kplug import plugin
from kplug.plugin import (
    ConfigError,
    DataError,
    FinishedRun,
    PathPattern,
    Plugins,
    bare_name_hint,
    first_line,
    iter_layers,
    load_finished_run,
    no_match_error,
)

from kplug_compress.float32 import float32_copy, precision_note

# Weight-only modes of Model.quantize that need no calibration data (gptq and awq do).
MODES = ("int8", "int4")


@dataclass
class QuantizeResult:
    """What ``quantize_run`` returns: the quantized model, where it was written and the report."""

    model: keras.Model
    output_dir: Path
    report: dict[str, Any]


def weight_bytes(model: keras.Model) -> int:
    """Bytes of every variable of ``model`` in its stored dtype (int4 is packed two per byte)."""
    return int(
        sum(
            math.prod(v.shape) * np.dtype(keras.backend.standardize_dtype(v.dtype)).itemsize
            for v in model.weights
        )
    )


def saved_bytes(model: keras.Model) -> int:
    """Size of ``model`` saved as ``.keras`` without optimizer state."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.stat().st_size


def _evaluate(loaded: FinishedRun, x: np.ndarray, y: Any, batch_size: int) -> dict[str, float]:
    loaded.compile()  # no optimizer: evaluation only
    values = loaded.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    return {key: float(value) for key, value in values.items()}


def _quantize(model: keras.Model, mode: str, keep: list[str]) -> tuple[list[str], list[str]]:
    """Quantize every layer Keras can, except those matching ``keep``; return (quantized, kept)."""
    layers = list(iter_layers(model))
    paths = {id(layer): path for path, layer in layers}
    roots: list[str] = []
    for text in keep:
        pattern = PathPattern.compile(text, "--keep")
        hits = [path for path, _ in layers if pattern.matches(path)]
        if not hits:
            raise no_match_error(
                "--keep", text, (path for path, _ in layers), hint=bare_name_hint(pattern, layers)
            )
        roots.extend(hits)

    def kept(layer: keras.layers.Layer) -> bool:  # a matched layer and everything inside it
        path = paths.get(id(layer), layer.name)
        return any(path == root or path.startswith(root + "/") for root in roots)

    with warnings.catch_warnings():  # Keras warns once per layer type it cannot quantize
        warnings.simplefilter("ignore", UserWarning)
        try:
            model.quantize(mode, filters=lambda layer: not kept(layer))
        except (ValueError, TypeError, NotImplementedError) as error:
            raise ConfigError(
                f"--mode {mode}: Keras {keras.__version__} cannot quantize this model: {first_line(error)}"
            ) from None
    quantized = [path for path, layer in iter_layers(model) if layer.quantization_mode is not None]
    left = [
        path
        for path, layer in iter_layers(model)
        if kept(layer) and layer.weights and not list(layer._flatten_layers(include_self=False))
    ]
    return quantized, left


def _fine_tune(
    loaded: FinishedRun, x: Any, y: Any, validation: Any, epochs: int, learning_rate: float | None
):
    train = loaded.config.train
    rate = learning_rate if learning_rate is not None else train.optimizer.learning_rate * 0.1
    if not loaded.model.trainable_weights:
        raise ConfigError(
            "--epochs: nothing is left to fine-tune after quantization (every weight is quantized and "
            "frozen); quantize without --epochs, or keep some layers float with --keep."
        )
    # a new optimizer over the variables quantization left trainable (see the module docstring)
    loaded.compile(learning_rate=rate)
    history = loaded.model.fit(
        x, y, batch_size=train.batch_size, epochs=epochs, validation_data=validation, verbose=0
    )
    return {
        "epochs": epochs,
        "learning_rate": rate,
        "trainable_variables": [v.path for v in loaded.model.trainable_weights],
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
    }


def quantize_run(
    run_dir: str | Path,
    mode: str = "int8",
    epochs: int = 0,
    learning_rate: float | None = None,
    keep: list[str] | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    plugins: Plugins | list[Any] | None = None,
) -> QuantizeResult:
    """Quantize a finished run's model and write it with a size/accuracy report.

    Example::

        result = kplug_compress.quantize_run("runs/digits", mode="int8")
        result.report["accuracy"]["change"], result.report["size"]["weights_ratio"]

    Args:
        run_dir: a run directory written by ``kplug train``.
        mode: ``"int8"`` or ``"int4"`` (weight-only, per Keras' ``Model.quantize``).
        epochs: fine-tune this many epochs on the run's training split after quantizing
            (what stays trainable: biases and layers Keras does not quantize).
        learning_rate: for fine-tuning; default a tenth of the run's optimizer rate.
        keep: layer-path patterns (globs or ``re:`` regexes, as everywhere in kplug) of the layers
            to leave unquantized, with everything inside them (``heads/*``).
        output: the directory to write; default ``RUN_DIR/quantized-<mode>``.
        overwrite: replace an earlier output directory.
        plugins: as for ``kplug.fit``.

    Raises:
        ConfigError: an unknown mode, a ``keep`` pattern matching no layer, a model with
            nothing Keras can quantize, or fine-tuning with nothing left trainable.
        DataError: the run trained on in-memory data, which is not in the run directory.
    """
    if mode not in MODES:
        raise ConfigError(
            f"--mode {mode!r}: kplug quantizes with Keras {keras.__version__}'s weight-only modes "
            f"{', '.join(MODES)} (float8, gptq and awq need a calibration or training setup kplug does "
            f"not provide)."
        )
    if epochs < 0:
        raise ConfigError(f"--epochs {epochs}: must be 0 (no fine-tuning) or more.")
    started = time.perf_counter()
    source = Path(run_dir)
    loaded = load_finished_run(source, plugins)
    if loaded.in_memory_data:
        raise DataError(
            f"{source} was trained on in-memory data (source '{loaded.components.dataset.component.name}'), "
            f"which is not saved with the run; kplug quantize needs the run's own data to measure accuracy."
        )
    split = "validation" if loaded.split_size("validation") else "test" if loaded.split_size("test") else None
    if split is None:
        raise DataError(f"{source} has no validation or test split to measure the quantized model on.")

    x_eval, y_eval = loaded.split_data(split)
    batch_size = loaded.config.train.batch_size
    before = _evaluate(loaded, x_eval, y_eval, batch_size)
    size_before = {"weights_bytes": weight_bytes(loaded.model), "file_bytes": saved_bytes(loaded.model)}
    precision = precision_note(loaded.model)
    loaded.model = float32_copy(loaded.model)  # Keras quantizes no float16 layer to int8
    quantized, kept = _quantize(loaded.model, mode, list(keep or []))
    if not quantized:
        raise ConfigError(
            f"{source}: Keras quantizes Dense, EinsumDense and Embedding layers, and this model has none "
            f"outside --keep; nothing to quantize."
        )
    after_quantization = _evaluate(loaded, x_eval, y_eval, batch_size)
    fine_tune = None
    after = after_quantization
    if epochs:
        x_train, y_train = loaded.split_data("train")
        fine_tune = _fine_tune(loaded, x_train, y_train, (x_eval, y_eval), epochs, learning_rate)
        after = _evaluate(loaded, x_eval, y_eval, batch_size)
    size_after = {"weights_bytes": weight_bytes(loaded.model), "file_bytes": saved_bytes(loaded.model)}

    target = Path(output) if output is not None else source / f"quantized-{mode}"
    plugin.prepare_run_dir(target, overwrite)
    for name in (plugin.CONFIG_FILE, plugin.LABELS_FILE):
        shutil.copyfile(source / name, target / name)
    plugin.save_model(loaded.model, target / plugin.MODEL_FILE)
    metric = "accuracy" if "accuracy" in before else next(k for k in before if k != "loss")
    report = {
        "quantization": {
            "mode": mode,
            "source": str(source),
            "backend": keras.backend.backend(),
            "keras": keras.__version__,
            "quantized_layers": quantized,
            "kept_float": kept,
            "precision": precision,
        },
        "split": split,
        "size": {
            "before": size_before,
            "after": size_after,
            "weights_ratio": size_after["weights_bytes"] / size_before["weights_bytes"],
        },
        "metrics": {"before": before, "after_quantization": after_quantization, "after": after},
        metric: {
            "before": before[metric],
            "after": after[metric],
            "change": after[metric] - before[metric],
        },
        "fine_tune": fine_tune,
        "seconds": time.perf_counter() - started,
    }
    plugin.write_json(target / plugin.REPORT_FILE, report)
    return QuantizeResult(loaded.model, target, report)


def _quantize_command(args: argparse.Namespace) -> int:
    result = quantize_run(
        args.run_dir,
        mode=args.mode,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        keep=args.keep,
        output=args.output,
        overwrite=args.overwrite,
    )
    report = result.report
    size = report["size"]
    done = report["quantization"]
    print(
        f"{done['mode']}: {len(done['quantized_layers'])} layers quantized; "
        f"weights {size['before']['weights_bytes']:,} -> {size['after']['weights_bytes']:,} bytes "
        f"({size['weights_ratio']:.2f}x)"
    )
    for name, values in report["metrics"]["before"].items():
        print(f"{report['split']} {name}: {values:.4f} -> {report['metrics']['after'][name]:.4f}")
    print(f"Quantized run directory: {result.output_dir}")
    return 0


@kplug.hookimpl(specname="kplug_add_commands")
def add_quantize_command(commands: argparse._SubParsersAction) -> None:
    """Add ``kplug quantize RUN_DIR --mode int8|int4``."""
    command = commands.add_parser(
        "quantize", help="quantize a finished run's model (int8/int4) and report size and accuracy"
    )
    command.add_argument("run_dir", help="run directory written by kplug train")
    command.add_argument("--mode", default="int8", help="int8 (default) or int4")
    command.add_argument(
        "--epochs", type=int, default=0, help="fine-tune this many epochs after quantizing (default 0)"
    )
    command.add_argument("--learning-rate", type=float, help="fine-tuning rate (default: the run's / 10)")
    command.add_argument(
        "--keep",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="layers to leave float: layer-path globs (heads/*) or re: regexes",
    )
    command.add_argument("--output", help="directory to write (default RUN_DIR/quantized-MODE)")
    command.add_argument("--overwrite", action="store_true", help="replace an earlier output directory")
    command.set_defaults(handler=_quantize_command)
