"""kplug demo: does pretraining pay? SST-2 sentiment from a few labels with the pretrained MiniLM.

Run from the repository root: ``python examples/sentiment/demo.py`` (``nox -s demo`` installs
kplug and kplug-text first). For each number of labels and each seed it trains three models
with ``kplug.fit`` on the same labelled phrases drawn from
``plugins/kplug-text/examples/data/sst2-train-12k.tsv``:

- ``frozen``: the pretrained MiniLM (``minilm-l6``) frozen, a classification head trained on it;
  without dropout the encoder is a fixed feature extractor, so kplug computes its features once
  and trains the head on them (``train.cache_features``);
- ``fine-tuned``: the pretrained MiniLM, staged: the head alone first, then everything with
  layer-wise rate decay;
- ``scratch``: the same architecture (a 6-layer, 384-wide BERT) from random weights, trained
  with the same stages as ``fine-tuned``: only the initial weights differ.

All are scored on the same phrases of ``sst2-dev.tsv``, which none of them trains on. Prints a
table (mean, spread and every seed) and writes it, ``results.json`` and ``transfer.png`` to the
run directory (default ``runs/sentiment-demo``). ``--labels``, ``--seeds``, ``--test`` and
``--sequence-length`` make it smaller or larger. The trainings run on two worker processes
(``--workers``; 1 trains them all in this process), as most of a training's CPU time (tracing,
building the model, scoring) uses one core.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "plugins" / "kplug-text" / "examples" / "data"
TRAIN_FILE = DATA / "sst2-train-12k.tsv"
TEST_FILE = DATA / "sst2-dev.tsv"
VARIANTS = ("frozen", "fine-tuned", "scratch")
PRETRAINED = ("frozen", "fine-tuned")
# the architecture of all-MiniLM-L6-v2, for the random-init model
MINILM_ARCHITECTURE = {"num_layers": 6, "num_heads": 12, "hidden_dim": 384, "intermediate_dim": 1536}


@dataclass(frozen=True)
class Settings:
    """What the demo trains: label counts, seeds, test phrases, tokens per phrase, epoch budgets.

    Epochs scale with the number of labels so that small label counts still get enough steps:
    a stage trains ``round(budget / labels)`` epochs, at least 1 and at most ``most_epochs``.
    """

    labels: tuple[int, ...] = (100, 300, 1000)
    seeds: tuple[int, ...] = (1, 2)
    test: int = 300
    sequence_length: int = 24
    batch_size: int = 16
    head_budget: int = 200  # phrases the head-only stage sees (fine-tuned, scratch)
    frozen_budget: int = 600  # phrases the frozen run's head sees
    tune_budget: int = 300  # phrases the train-everything stage sees (fine-tuned, scratch)
    most_epochs: int = 10
    # The frozen encoder runs without dropout, as a feature extractor in inference mode would, so
    # kplug computes its features once (train.cache_features). The trained encoders keep
    # MiniLM's dropout of 0.1.
    frozen_dropout: float = 0.0
    dropout: float = 0.1


def epochs(labels: int, budget: int, most: int) -> int:
    """Epochs of a stage that sees about ``budget`` phrases when it trains on ``labels`` of them."""
    return max(1, min(most, round(budget / labels)))


def run_config(variant: str, labels: int, seed: int, settings: Settings, run_dir: Path) -> dict[str, Any]:
    """The kplug config of one variant trained on ``labels`` phrases drawn with ``seed``."""
    head = epochs(labels, settings.head_budget, settings.most_epochs)
    tune = epochs(labels, settings.tune_budget, settings.most_epochs)
    pretrained = {"name": "minilm-l6", "options": {"pooling": "mean", "dropout": settings.dropout}}
    if variant == "frozen":
        backbone = {"name": "minilm-l6", "options": {"pooling": "mean", "dropout": settings.frozen_dropout}}
        frozen = epochs(labels, settings.frozen_budget, 3 * settings.most_epochs)
        stages = [{"epochs": frozen, "trainable": ["heads/*"], "optimizer": {"learning_rate": 1e-2}}]
    elif variant in ("fine-tuned", "scratch"):
        if variant == "fine-tuned":
            backbone = pretrained
        else:
            backbone = {
                "name": "bert",
                "options": {"pooling": "mean", "dropout": settings.dropout, **MINILM_ARCHITECTURE},
            }
        stages = [
            {"epochs": head, "trainable": ["heads/*"], "optimizer": {"learning_rate": 1e-2}},
            {"epochs": tune, "trainable": "all", "layer_decay": 0.8, "optimizer": {"learning_rate": 1e-4}},
        ]
    else:
        raise ValueError(f"variant {variant!r}: allowed are {', '.join(VARIANTS)}")
    return {
        "name": f"sentiment-{variant}-{labels}",
        "seed": seed,
        "data": {
            "source": "tsv",
            "options": {"path": str(TRAIN_FILE), "label": "label", "text": True},
            "limit": labels,  # drawn with the run's seed
        },
        "model": {
            "backbone": backbone,
            "preprocessor": {
                "name": "minilm-l6-tokenizer",
                "options": {"sequence_length": settings.sequence_length},
            },
            "heads": [{"name": "classification", "id": "sentiment"}],
        },
        "train": {
            "optimizer": {"name": "adamw", "learning_rate": 1e-4, "weight_decay": 0.01},
            "batch_size": settings.batch_size,
            "verbose": 2,
            "stages": stages,
        },
        "output": {
            "dir": str(run_dir / f"{variant}-{labels}-seed{seed}"),
            "overwrite": True,
            "checkpoint_every": 0,
            "keep_checkpoints": 1,
        },
    }


def held_out_phrases(count: int, seed: int = 0) -> dict[str, Any]:
    """``count`` phrases of sst2-dev.tsv drawn with ``seed``, as the ``arrays`` source's options."""
    import numpy as np

    with TEST_FILE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    picked = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    return {
        "x": np.asarray([rows[i]["sentence"] for i in picked]),
        "y": np.asarray([int(rows[i]["label"]) for i in picked]),
    }


@dataclass(frozen=True)
class Row:
    """One line of the table: a variant at a number of labels, over the seeds."""

    labels: int
    variant: str
    mean: float
    spread: float  # standard deviation over the seeds (0 for one seed)
    low: float
    high: float
    seeds: dict[int, float]


def summarise(results: list[dict[str, Any]]) -> list[Row]:
    """Rows by number of labels, then variant, from ``{"labels", "variant", "seed", "accuracy"}`` records."""
    rows = []
    for labels in sorted({r["labels"] for r in results}):
        for variant in VARIANTS:
            scores = {
                r["seed"]: r["accuracy"] for r in results if r["labels"] == labels and r["variant"] == variant
            }
            if not scores:
                continue
            values = list(scores.values())
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(
                Row(labels, variant, statistics.fmean(values), spread, min(values), max(values), scores)
            )
    return rows


def verdicts(rows: list[Row]) -> dict[int, dict[str, Any]]:
    """Per number of labels: each pretrained variant's gain over scratch, and whether it is clear.

    A gain is clear when the pretrained variant's worst seed beats scratch's best seed, so that
    no draw of the labels puts them in the other order.
    """
    found: dict[int, dict[str, Any]] = {}
    for labels in sorted({row.labels for row in rows}):
        by_variant = {row.variant: row for row in rows if row.labels == labels}
        scratch = by_variant.get("scratch")
        if scratch is None:
            continue
        gains = {}
        for variant in PRETRAINED:
            if variant in by_variant:
                ours = by_variant[variant]
                gains[variant] = {"gain": ours.mean - scratch.mean, "clear": ours.low > scratch.high}
        found[labels] = gains
    return found


def table(rows: list[Row], settings: Settings) -> str:
    """The results as a plain-text table, with every seed's accuracy and the gains over scratch."""
    seeds = ", ".join(str(s) for s in settings.seeds)
    lines = [
        f"Accuracy on {settings.test} SST-2 phrases none of the models trained on; "
        f"mean and spread (std) over seeds {seeds}",
        f"{'labels':>6}  {'variant':<10}  {'mean':>6}  {'spread':>6}  per seed",
    ]
    for row in rows:
        per_seed = "  ".join(f"{seed}: {value:.3f}" for seed, value in sorted(row.seeds.items()))
        lines.append(f"{row.labels:>6}  {row.variant:<10}  {row.mean:6.3f}  {row.spread:6.3f}  {per_seed}")
    lines.append("")
    for labels, gains in verdicts(rows).items():
        said = [
            f"{variant} {g['gain'] * 100:+.1f} points ({'clear: every seed' if g['clear'] else 'NOT clear: seeds overlap'})"
            for variant, g in gains.items()
        ]
        lines.append(f"{labels:>6} labels, pretrained vs scratch: {'; '.join(said)}")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    """Accuracy against the number of labels, one line per variant, every seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for variant in VARIANTS:
        mine = [row for row in rows if row.variant == variant]
        if not mine:
            continue
        (line,) = axes.plot([r.labels for r in mine], [r.mean for r in mine], marker="o", label=variant)
        for row in mine:
            axes.scatter(
                [row.labels] * len(row.seeds), list(row.seeds.values()), color=line.get_color(), s=12
            )
    axes.set_xscale("log")
    counts = sorted({row.labels for row in rows})
    axes.set_xticks(counts, [str(count) for count in counts])
    axes.minorticks_off()
    axes.set_xlabel("labelled phrases")
    axes.set_ylabel("accuracy on held-out SST-2 phrases")
    axes.set_title("MiniLM: pretrained vs random init")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def cpu_seconds() -> float:
    """CPU time this process and its finished worker processes have used so far, user + system."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def quiet_tensorflow() -> None:
    """Keep TensorFlow's log lines off the terminal (all backends import it), unless the user set
    ``TF_CPP_MIN_LOG_LEVEL``: its start-up lines through the kplug CLI's import hook, then its
    C++ messages below FATAL (the oneDNN int64 fallback notice) and its Python warnings
    (tf.function retracing)."""
    import kplug

    if not kplug.quiet_tensorflow():
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def start_worker(threads: int) -> None:
    """Set up a forked worker before it imports Keras: quiet TensorFlow, ``threads`` compute threads.

    Each backend would otherwise start a thread per core in every worker, so two workers on two
    cores run four compute threads. Measured on an idle 2-core machine (TensorFlow, the default
    grid, the same table): 10.5 minutes and 1,098 CPU-seconds with one thread per worker, 11.3
    minutes and 1,207 CPU-seconds without.
    """
    quiet_tensorflow()
    os.environ.update(
        TF_NUM_INTRAOP_THREADS=str(threads),
        TF_NUM_INTEROP_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),  # torch's intra-op threads
    )
    if threads == 1:
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()


def parse(argv: list[str] | None) -> tuple[Settings, Path, int]:
    """Settings and the run directory from the command line."""
    default = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=list(default.labels))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(default.seeds))
    parser.add_argument("--test", type=int, default=default.test, help="held-out phrases scored")
    parser.add_argument("--sequence-length", type=int, default=default.sequence_length)
    parser.add_argument("--epochs", type=int, default=default.most_epochs, help="at most this many per stage")
    parser.add_argument("--output", default="runs/sentiment-demo", help="the run directory")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="worker processes training in parallel (1: all in this process)",
    )
    args = parser.parse_args(argv)
    for name in ("labels", "seeds"):
        if len(set(getattr(args, name))) != len(getattr(args, name)):
            parser.error(f"--{name} {getattr(args, name)}: give each value once")
    if (
        min(args.labels) < 2
        or args.test < 2
        or args.sequence_length < 4
        or min(args.epochs, args.workers) < 1
    ):
        parser.error(
            "--labels and --test take at least 2, --sequence-length at least 4, --epochs and --workers at least 1"
        )
    settings = Settings(
        labels=tuple(sorted(args.labels)),
        seeds=tuple(args.seeds),
        test=args.test,
        sequence_length=args.sequence_length,
        most_epochs=args.epochs,
    )
    return settings, Path(args.output), args.workers


def train_one(job: tuple[str, int, int], settings: Settings, run_dir: Path, verbose: int) -> dict[str, Any]:
    """Train one variant on ``labels`` phrases drawn with ``seed``; score it on the held-out phrases.

    Returns its result record (accuracy, wall and CPU seconds). The run directory keeps the
    training's config, report and metrics, not its weights (~270 MB per MiniLM run).
    """
    import kplug

    variant, labels, seed = job
    config = run_config(variant, labels, seed, settings, run_dir)
    config["train"]["verbose"] = verbose
    began, cpu_began = time.perf_counter(), cpu_seconds()
    result = kplug.fit(config, test_data=held_out_phrases(settings.test))
    seconds, cpu_used = time.perf_counter() - began, cpu_seconds() - cpu_began
    (result.run_dir / "model.keras").unlink(missing_ok=True)
    shutil.rmtree(result.run_dir / "checkpoints", ignore_errors=True)
    return {
        "labels": labels,
        "variant": variant,
        "seed": seed,
        "accuracy": float(result.metrics["accuracy"]),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_used, 1),
    }


def pool_start_method(workers: int) -> str | None:
    """``"fork"`` when the trainings can run in ``workers`` worker processes, else ``None`` (in this one).

    The workers are forked before this process imports Keras (forking a process that has started
    TensorFlow's threads is unsafe), so the demo trains in this process when Keras is already
    imported (as under pytest) or the platform cannot fork (Windows).
    """
    import multiprocessing

    if workers < 2 or "keras" in sys.modules or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return "fork"


def train_all(
    jobs: list[tuple[str, int, int]], settings: Settings, run_dir: Path, workers: int
) -> list[dict]:
    """Every job's result record, trained in ``workers`` forked processes or in this one."""
    method = pool_start_method(workers)
    if method is None:
        results = []
        for number, job in enumerate(jobs, 1):
            print(f"\n=== {number}/{len(jobs)}: {job[0]}, {job[1]} labels, seed {job[2]} ===", flush=True)
            results.append(report(train_one(job, settings, run_dir, verbose=2)))
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    print(f"Training {len(jobs)} models on {workers} worker processes...", flush=True)
    # the largest label counts first, so that no long training starts last
    ordered = sorted(jobs, key=lambda job: -job[1])
    context = multiprocessing.get_context(method)
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=start_worker, initargs=(threads,)
    ) as pool:
        futures = [pool.submit(train_one, job, settings, run_dir, 0) for job in ordered]
        results = [report(future.result()) for future in as_completed(futures)]
    order = {job: index for index, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order[(r["variant"], r["labels"], r["seed"])])


def report(record: dict[str, Any]) -> dict[str, Any]:
    """Print one training's result line; return the record."""
    print(
        f"{record['variant']}, {record['labels']} labels, seed {record['seed']}: accuracy "
        f"{record['accuracy']:.3f} ({record['seconds']:.0f} s, {record['cpu_seconds']:.0f} CPU-s)",
        flush=True,
    )
    return record


def main(argv: list[str] | None = None) -> list[Row]:
    """Train every variant at every label count and seed; print, save and plot the results."""
    settings, run_dir, workers = parse(argv)
    quiet_tensorflow()
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    jobs = [(v, n, s) for n in settings.labels for s in settings.seeds for v in VARIANTS]
    processes = workers if pool_start_method(workers) else 1
    results = train_all(jobs, settings, run_dir, workers)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    import keras

    rows = summarise(results)
    text = table(rows, settings)
    text += (
        f"\n\nbackend {keras.backend.backend()}, {len(jobs)} trainings in {seconds / 60:.1f} minutes "
        f"on {processes} process{'es' if processes > 1 else ''} "
        f"({cpu:.0f} CPU-seconds, user + system; {cpu / seconds:.2f} CPU-s per second)"
    )
    print("\n" + text, flush=True)
    (run_dir / "table.txt").write_text(text + "\n")
    summary = {
        "backend": keras.backend.backend(),
        "minutes": round(seconds / 60, 2),
        "cpu_seconds": round(cpu, 1),
        "processes": processes,
        "settings": asdict(settings),
        "runs": results,
        "rows": [asdict(row) for row in rows],
        "verdicts": verdicts(rows),
    }
    (run_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(rows, run_dir / "transfer.png")
    print(f"\nRun directory: {run_dir} (table.txt, results.json, transfer.png, one directory per training)")
    return rows


if __name__ == "__main__":
    main()
