"""Turn the raw benchmark JSON into BENCHMARKS.md (tables, the command, the machine and the noise)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTES = HERE / "notes.md"


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _spread(values: list[float]) -> str:
    """min–max as a percentage around the median: the run-to-run noise."""
    if len(values) < 2:
        return "—"
    middle = statistics.median(values)
    return f"{100 * (min(values) / middle - 1):+.0f}% / {100 * (max(values) / middle - 1):+.0f}%"


def overhead_section(results: dict[str, Any]) -> list[str]:
    rows, native = [], []
    for backend, found in results["backends"].items():
        overhead = found.get("overhead")
        if not overhead:
            continue
        for model in ("mlp", "cnn"):
            if model not in overhead:
                continue
            item = overhead[model]
            sides = item["sides"]
            plain, ours, bare, backup = (
                sides["plain"],
                sides["kplug"],
                sides["kplug_no_epoch_checkpoint"],
                sides["plain_backup"],
            )
            loop_ratio, safe_ratio = item["ratio_loop"], item["ratio_with_checkpoints"]
            rows.append(
                [
                    backend,
                    model,
                    f"{item['size']} x {item['epochs']} ep, batch {item['batch_size']}",
                    _f(plain["fit_seconds"]),
                    _f(bare["fit_seconds"]),
                    f"**{loop_ratio['fit']:.3f}**",
                    _spread(loop_ratio["fit_per_repeat"]),
                    _f(loop_ratio["steady"]),
                    _f(item["ratio_nesting"]["fit"]) if "ratio_nesting" in item else "—",
                    _f(backup["fit_seconds"]),
                    _f(ours["fit_seconds"]),
                    f"**{safe_ratio['fit']:.3f}**",
                    _spread(safe_ratio["fit_per_repeat"]),
                    _f(safe_ratio["steady"]),
                    f"{1000 * (backup['steady_epoch_seconds'] - plain['steady_epoch_seconds']):.0f} / "
                    f"{1000 * (ours['steady_epoch_seconds'] - bare['steady_epoch_seconds']):.0f}",
                    (
                        "{keras_backup:.1f} / {kplug:.1f}".format(**item["checkpoint_write_ms"])
                        if "checkpoint_write_ms" in item
                        else "—"
                    ),
                ]
            )
            loop = sides["torch_loop"]
            native.append(
                [
                    backend,
                    model,
                    f"{loop['samples_per_second']:.0f}",
                    f"{plain['samples_per_second']:.0f}",
                    f"{bare['samples_per_second']:.0f}",
                    f"**{item['kplug_vs_torch_loop']:.2f}**",
                    _spread(loop["steady_epoch_all"]),
                ]
            )
    if not rows:
        return []
    settings = {b: f.get("overhead", {}).get("settings") for b, f in results["backends"].items()}
    lines = [
        "## 1. kplug against plain Keras (same process, alternating)",
        "",
        "Fit time = wall time of the `Model.fit` call(s): plain Keras timed around `model.fit`, kplug by "
        "`report.json` `timings.fit_seconds` (data reading, model building, final save and evaluation "
        "excluded on both sides). Steady epoch = median epoch time after the first (no tracing/compiling). "
        "Medians over the repeats; *spread* is the min / max per-repeat ratio around its median.",
        "",
        "Two like-for-like pairs: **loop** = kplug with `output.checkpoint_every: 0` against plain "
        "`Model.fit` (neither writes anything while training: the cost of kplug's loop, batch stream and "
        "callbacks; target 1.02); **with checkpoints** = kplug's default (an atomic checkpoint every epoch) "
        "against plain `Model.fit` with Keras' `BackupAndRestore` (weights and optimizer state every "
        "epoch). *ckpt ms* = what one epoch's checkpoint adds to the steady epoch: Keras' backup / kplug's "
        "(a difference of two noisy medians); *one write ms* = one write timed directly on the trained model, "
        "median of 9: Keras' `save_weights` (what `BackupAndRestore` writes) / kplug's `write_checkpoint`.",
        "",
        "The plain model has kplug's shape, as any Keras transfer-learning model does: `inputs -> backbone "
        "(a Model) -> head (a Sequential)`. *sub-models* = that plain model's fit time over the same layers "
        "in one flat graph: what the two sub-model calls per step cost Keras itself, kplug or not.",
        "",
        f"Compile settings on both sides (kplug's defaults): `{json.dumps(settings)}`; on torch both sides "
        "also train with kplug's oneDNN routing of float32 products (kplug/backend/cpu_matmul.py).",
        "",
    ]
    lines += _table(
        [
            "backend",
            "model",
            "data",
            "plain fit s",
            "kplug fit s",
            "loop: kplug/plain fit",
            "spread",
            "loop: epoch ratio",
            "sub-models: nested/flat plain fit",
            "plain+backup fit s",
            "kplug+ckpt fit s",
            "with ckpt: kplug/plain fit",
            "spread",
            "with ckpt: epoch ratio",
            "ckpt ms (keras / kplug)",
            "one write ms (keras / kplug)",
        ],
        rows,
    )
    lines += [
        "## 2. Against a hand-written PyTorch loop",
        "",
        "torch.nn, same architecture, Adam 1e-3, same data and batch size, shuffled each epoch, run in the "
        "same process as the Keras sides (alternating). Samples/s from the steady epoch time. "
        "*ratio* = kplug samples/s (without per-epoch checkpoints, like the loop) / torch-loop samples/s (> 1: kplug faster). The torch loop runs in each "
        "backend's process, so its numbers also show the run-to-run noise.",
        "",
    ]
    lines += _table(
        [
            "backend",
            "model",
            "torch loop samples/s",
            "plain Keras samples/s",
            "kplug samples/s",
            "kplug / loop",
            "loop epoch spread",
        ],
        native,
    )
    return lines


def _speedup(item: dict[str, Any] | None) -> str:
    """``wall / CPU`` speed-up over Keras' defaults (older results carry neither: a dash)."""
    if not item or "speedup" not in item:
        return "—"
    return f"{item['speedup']:.2f} / {item['cpu_speedup']:.2f}"


def settings_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for backend, found in results["backends"].items():
        sweep = found.get("settings")
        chosen = json.dumps(found.get("overhead", {}).get("settings", None), sort_keys=True)
        if not sweep:
            continue
        for model, candidates in sweep.items():
            best = min(candidates.values(), key=lambda c: c["steady_epoch_seconds"])["steady_epoch_seconds"]
            for key, item in candidates.items():
                mark = " (kplug default)" if key == chosen else ""
                kplug_side = item.get("kplug")
                rows.append(
                    [
                        backend,
                        model,
                        f"`{key}`{mark}",
                        _f(item["steady_epoch_seconds"], 4),
                        f"{item['steady_epoch_seconds'] / best:.2f}",
                        _f(item["fit_seconds"]),
                        _speedup(item),
                        _f(kplug_side["steady_epoch_seconds"], 4) if kplug_side else "—",
                        f"**{_speedup(kplug_side)}**" if kplug_side else "—",
                        _speedup(item.get("kplug_stream")),
                    ]
                )
    if not rows:
        return []
    lines = [
        "## 3. Compile settings per backend (plain Keras and kplug)",
        "",
        "Each candidate `Model.compile` setting (kplug: `train.compile`), plain `Model.fit` and `kplug.fit` "
        "(without per-epoch checkpoints) alternating in one process, median over repeats. *vs best* is "
        "plain fit's steady epoch time relative to the fastest candidate for that backend and model; *fit s* "
        "includes tracing/compiling (torch.compile's is large). *speed-up* = a side's steady epoch at the "
        "first candidate (Keras' defaults: jax XLA, tensorflow no XLA on CPU, torch eager) over its steady "
        "epoch at this one, per repeat, median; given as wall / CPU seconds (the process's CPU time, all "
        "threads: less swayed by other jobs on a loaded machine). *kplug batch stream* is kplug feeding "
        "`fit` its `PyDataset` instead of the `tf.data` pipeline (`kplug/backend/tf_batches.py`) it now "
        "uses for in-memory arrays on tensorflow: the input path before it. `steps_per_execution` must be "
        "1 on torch, whose kplug sides are not measured here.",
        "",
        *[
            f"- {backend} measured separately: `{found['settings_command']}`"
            for backend, found in results["backends"].items()
            if found.get("settings_command")
        ],
        "",
    ]
    header = [
        "backend",
        "model",
        "settings",
        "plain steady epoch s",
        "vs best",
        "plain fit s",
        "plain speed-up",
        "kplug steady epoch s",
        "kplug speed-up",
        "kplug batch stream speed-up",
    ]
    return lines + _table(header, rows)


def peak_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for backend, found in results["backends"].items():
        peak = found.get("peak")
        if not peak:
            continue
        row = [backend, f"{peak['numpy']:.1f}", f"{peak[backend]:.1f}"]
        for model in ("mlp", "cnn"):
            item = found.get("overhead", {}).get(model)
            if item is None:
                row += ["—", "—"]
                continue
            achieved = item["train_flops_per_sample"] * item["sides"]["kplug"]["samples_per_second"] / 1e9
            row += [f"{achieved:.1f}", f"{100 * achieved / peak[backend]:.1f}%"]
        rows.append(row)
    if not rows:
        return []
    lines = [
        "## 4. The machine's limit",
        "",
        "Best float32 GFLOP/s of one square matmul (numpy, and the backend's own op, in that backend's "
        "process), and the GFLOP/s kplug's training step reaches (analytic FLOPs: matmuls and convolutions, "
        "forward x 3 for forward + backward, times steady samples/s) as a fraction of the backend's peak. "
        "FLOPs per training example: "
        + ", ".join(
            f"{m} {item['train_flops_per_sample'] / 1e6:.2f} MFLOP"
            for m, item in next(
                (f["overhead"] for f in results["backends"].values() if f.get("overhead")), {}
            ).items()
            if m != "settings"
        )
        + ".",
        "",
    ]
    return lines + _table(
        [
            "backend",
            "numpy GFLOP/s",
            "backend GFLOP/s",
            "MLP train GFLOP/s",
            "MLP % of peak",
            "CNN train GFLOP/s",
            "CNN % of peak",
        ],
        rows,
    )


def pipeline_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for backend, found in results["backends"].items():
        pipeline = found.get("pipeline")
        if not pipeline:
            continue
        model_rate = max(
            (
                item["sides"]["kplug"]["samples_per_second"]
                for m, item in found.get("overhead", {}).items()
                if m != "settings"
            ),
            default=None,
        )
        rows.append(
            [
                backend,
                f"{pipeline['read_samples_per_second']:.0f}",
                f"{pipeline['batch_samples_per_second']:.0f} ({pipeline['batches_by']})",
                "—" if model_rate is None else f"{model_rate:.0f}",
                "—"
                if model_rate is None
                else f"**{pipeline['batch_samples_per_second'] / model_rate:.0f}x**",
            ]
        )
    if not rows:
        return []
    lines = [
        "## 5. Input pipeline against the model",
        "",
        "*read*: kplug reading the shipped MNIST IDX files, selecting and splitting (`prepare_data`), once per "
        "run. *batches*: one epoch of the shuffled training batches fed to `Model.fit`, every epoch. *model*: "
        "kplug's fastest steady training samples/s on that backend (section 1). Target: batches at least 5x "
        "the model.",
        "",
    ]
    return lines + _table(
        ["backend", "read samples/s", "batches samples/s", "model samples/s", "batches / model"], rows
    )


def rss_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for backend, sides in results.get("rss", {}).items():
        for side, item in sides.items():
            rows.append(
                [backend, side, f"{item['peak_rss_mb']:.0f}", f"{item['rss_before_training_mb']:.0f}"]
            )
    if not rows:
        return []
    lines = [
        "## 6. Peak resident memory",
        "",
        "One MLP training run in a fresh process per row (`ru_maxrss`); *before training* is after imports "
        "and data loading, so the difference is what training adds.",
        "",
    ]
    return lines + _table(["backend", "run", "peak RSS MB", "before training MB"], rows)


def scaling_section(results: dict[str, Any]) -> list[str]:
    data_rows, batch_rows = [], []
    for backend, found in results["backends"].items():
        scaling = found.get("scaling")
        if not scaling:
            continue
        base = scaling["data"]["1"]["steady_epoch_seconds"]
        for factor, item in scaling["data"].items():
            data_rows.append(
                [
                    backend,
                    f"{factor}x ({item['size']})",
                    _f(item["steady_epoch_seconds"], 4),
                    f"{item['steady_epoch_seconds'] / base:.2f}",
                ]
            )
        for batch, item in scaling["batch"].items():
            batch_rows.append(
                [backend, batch, _f(item["steady_epoch_seconds"], 4), f"{item['samples_per_second']:.0f}"]
            )
    if not data_rows:
        return []
    lines = [
        "## 7. Scaling (kplug, MLP)",
        "",
        "Steady epoch time as the data grows (batch size as in section 1); linear means the last column "
        "reads 1, 2, 4, 8. One run per row.",
        "",
    ]
    lines += _table(["backend", "data", "epoch s", "relative"], data_rows)
    lines += ["Steady epoch time as the batch size grows (1x data):", ""]
    return lines + _table(["backend", "batch size", "epoch s", "samples/s"], batch_rows)


def text_section(results: dict[str, Any]) -> list[str]:
    lines = ["## 8. MiniLM fine-tuning against Hugging Face transformers", ""]
    rows = []
    for backend, found in results["backends"].items():
        text = found.get("text")
        if not text:
            continue
        sides = text["sides"]
        rate = {side: item.get("samples_per_second") for side, item in sides.items()}

        def shown(side: str, rate=rate) -> str:
            return f"{rate[side]:.1f}" if rate.get(side) else "—"

        def ratio(ours: str, theirs: str, rate=rate) -> str:
            return f"**{rate[ours] / rate[theirs]:.2f}**" if rate.get(ours) and rate.get(theirs) else "—"

        skipped = "; ".join(f"{side}: {item['skipped']}" for side, item in sides.items() if "skipped" in item)
        rows.append(
            [
                backend,
                shown("transformers"),
                shown("transformers_onednn"),
                shown("plain"),
                shown("kplug"),
                ratio("kplug", "transformers"),
                ratio("kplug", "transformers_onednn"),
                ratio("plain", "kplug"),
                skipped,
            ]
        )
    if not rows:
        skipped = results.get("text", {}).get("skipped") or "the `text` section was not among --sections"
        return lines + [f"Not run: {skipped}.", ""]
    lines += [
        "all-MiniLM-L6-v2 fine-tuning, sequence length 64, batch 32, AdamW 5e-5, mean pooling and a "
        "2-class head: transformers' own PyTorch model (eager) with a plain loop (tokenised once up front) "
        "against kplug-text's `minilm-l6` through `kplug.fit` (without per-epoch checkpoints: no side "
        "saves while training), and the same Keras model (kplug-text's backbone, a Flatten -> Dense head) "
        "with plain `Model.fit` and no kplug; alternating in one process per backend; steady samples/s. "
        "The transformers side runs in every backend's process, so its column also shows the run-to-run "
        "noise. Targets: kplug's best backend >= 1.8x transformers, kplug on torch >= 1.0x; "
        "*kplug/plain time* is kplug's overhead (section 1's target: at most 1.02). On the torch backend "
        "kplug routes float32 products to oneDNN while training (kplug/backend/cpu_matmul.py; the plain Keras side "
        "gets the same); *transformers + oneDNN* is transformers with that same torch setting, which its "
        "users can set themselves.",
        "",
    ]
    return lines + _table(
        [
            "backend",
            "transformers samples/s",
            "transformers + oneDNN samples/s",
            "plain Keras samples/s",
            "kplug samples/s",
            "kplug / transformers",
            "kplug / transformers + oneDNN",
            "kplug/plain time",
            "skipped",
        ],
        rows,
    )


def cache_section(results: dict[str, Any]) -> list[str]:
    lines = ["## 9. Cached features for a frozen MiniLM (head-only stage)", ""]
    rows = []
    for backend, found in results["backends"].items():
        cache = found.get("cache")
        if not cache:
            continue
        if "skipped" in cache:
            rows.append([backend, *["—"] * 6, cache["skipped"]])
            continue
        sides = cache["sides"]
        uncached, cached = sides["uncached"], sides["cached"]
        features = [r["feature_seconds"] for r in cached["runs"]]
        rows.append(
            [
                backend,
                f"{uncached['stage_seconds']:.1f}",
                f"{cached['stage_seconds']:.1f}",
                f"{statistics.median(features):.1f}",
                f"**{cache['speedup']:.1f}x**",
                _spread(cache["speedups"]),
                f"{uncached['steady_epoch_seconds'] / cached['steady_epoch_seconds']:.0f}x",
                "",
            ]
        )
    if not rows:
        return lines + ["Not run: the `cache` section was not among --sections.", ""]
    first = next(
        (f["cache"] for f in results["backends"].values() if "epochs" in f.get("cache", {})),
        {"epochs": "?", "size": "?"},
    )
    lines += [
        f"kplug-text's `minilm-l6` (dropout 0) frozen, a classification head trained for "
        f"{first['epochs']} epochs on {first['size']} SST-2 sentences (10% validation; the size per "
        "backend is in its command below when measured separately), sequence "
        "length 40, batch 32: `train.cache_features: false` against `true`, alternating in one process. "
        "A stage's time is the wall time inside `Model.fit` plus, when cached, computing the features "
        "(one inference pass over train and validation). *speed-up* is the median of the per-repeat "
        "ratios; *per epoch* compares steady epochs once the features exist.",
        "",
        *[
            f"- {backend} measured separately: `{found['cache']['command']}`"
            for backend, found in results["backends"].items()
            if found.get("cache", {}).get("command")
        ],
        "",
    ]
    return lines + _table(
        [
            "backend",
            "uncached stage s",
            "cached stage s",
            "of which features s",
            "speed-up",
            "spread",
            "per epoch",
            "skipped",
        ],
        rows,
    )


def run20_section(results: dict[str, Any]) -> list[str]:
    lines = ["## 10. Whole 20-epoch runs on torch, compile time included", ""]
    rows = []
    first: dict[str, Any] = {}
    for backend, found in results["backends"].items():
        run = found.get("run20")
        if not run:
            continue
        first = first or {**run, "backend": backend}
        for model in ("mlp", "cnn"):
            if model not in run:
                continue
            sides, ratios = run[model]["sides"], run[model]["ratios"]
            for side in ("kplug", "kplug_flat", "kplug_compiled", "plain", "plain_flat"):
                if side not in sides:
                    continue
                loop, plain = ratios[f"{side}/torch_loop"], ratios.get(f"{side}/plain")
                rows.append(
                    [
                        backend,
                        model,
                        side,
                        f"{sides[side]['fit_seconds']:.1f}",
                        f"{sides[side]['cpu_seconds']:.1f}",
                        f"{sides['torch_loop']['fit_seconds']:.1f}",
                        f"{loop['fit']:.2f}",
                        f"**{loop['cpu']:.2f}**",
                        f"{plain['fit']:.2f}" if plain else "—",
                        f"{plain['cpu']:.2f}" if plain else "—",
                    ]
                )
    if not rows:
        return lines + ["Not run: the `run20` section was not among --sections.", ""]
    lines += [
        f"The issue's target: kplug on torch >= 0.8x the hand-written torch loop for a run of "
        f"{first['epochs']} epochs, compile time included (MLP {first['mlp']['size'] if 'mlp' in first else '?'} "
        f"and CNN {first['cnn']['size'] if 'cnn' in first else '?'} examples, batch 128). Sides, alternating "
        "in one process: the torch loop (section 2's), plain `Model.fit` nested (kplug's shape) and flat, "
        "kplug at its default (`train.compile: auto`, no record: Keras' eager step), *kplug_flat* (kplug "
        "training its nested model through a flat graph over the same layers: `benchmarks/flat_forward.py`, "
        "a prototype) and kplug with "
        "`train.compile: {jit_compile: true}` (torch.compile). *vs loop* = loop time / side time (> 1: "
        "faster than the loop), by wall time of the whole fit and by CPU seconds of the process "
        "(the load-robust figure: on a loaded machine wall times swing with the other jobs); *vs plain* = "
        "plain nested fit time / side time.",
        "",
        *([f"- measured separately: `{first['command']}`"] if first.get("command") else []),
        "",
    ]
    return lines + _table(
        [
            "backend",
            "model",
            "side",
            "fit s",
            "CPU s",
            "torch loop fit s",
            "vs loop",
            "vs loop (CPU)",
            "vs plain",
            "vs plain (CPU)",
        ],
        rows,
    )


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


TF_CANDIDATES = {  # section 3's settings that issue 20, item 3 names, by their key in the results
    '{"jit_compile": false, "steps_per_execution": 8}': "`steps_per_execution: 8`",
    '{"jit_compile": true, "steps_per_execution": 1}': "`jit_compile: true` (XLA)",
    '{"jit_compile": true, "steps_per_execution": 8}': "both",
}
LOOP_TARGET = 1.02  # section 1: kplug/plain fit time
TORCH_RUN_TARGET = 0.8  # section 10: kplug on torch / the torch loop over a 20-epoch run


def targets_section(results: dict[str, Any]) -> list[str]:
    """Each target, whether this run meets it and the number it rests on (wall time; CPU beside it)."""
    rows = []
    for backend, found in results["backends"].items():
        for model, item in found.get("overhead", {}).items():
            if isinstance(item, dict) and "ratio_loop" in item:
                ratio = item["ratio_loop"]["fit"]
                rows.append(
                    [
                        f"1: kplug's loop costs at most {LOOP_TARGET:.2f}x plain `Model.fit`",
                        f"{backend} {model}",
                        f"kplug/plain fit time {ratio:.3f}",
                        _verdict(ratio <= LOOP_TARGET),
                    ]
                )
    sweep = results["backends"].get("tensorflow", {}).get("settings", {})
    for model, candidates in sweep.items():
        for key, label in TF_CANDIDATES.items():
            item = candidates.get(key)
            if not item or "kplug" not in item or "speedup" not in item["kplug"]:
                continue
            ours, plain = item["kplug"], item
            rows.append(
                [
                    f"3: {label} speeds kplug up at least as much as plain fit (tensorflow)",
                    f"tensorflow {model}",
                    f"speed-up kplug {ours['speedup']:.2f}x / plain {plain['speedup']:.2f}x "
                    f"(CPU {ours['cpu_speedup']:.2f}x / {plain['cpu_speedup']:.2f}x); steady epoch there "
                    f"kplug {ours['steady_epoch_seconds']:.3f} s / plain {plain['steady_epoch_seconds']:.3f} s",
                    _verdict(
                        ours["speedup"] >= plain["speedup"] and ours["cpu_speedup"] >= plain["cpu_speedup"]
                    ),
                ]
            )
    run = results["backends"].get("torch", {}).get("run20", {})
    for model in ("mlp", "cnn"):
        if model not in run:
            continue
        ratios = run[model]["ratios"]
        for side in ("kplug", "kplug_compiled"):
            if f"{side}/torch_loop" not in ratios:
                continue
            ratio = ratios[f"{side}/torch_loop"]
            how = "at its default (`compile: auto`)" if side == "kplug" else "with torch.compile"
            rows.append(
                [
                    f"4: kplug on torch >= {TORCH_RUN_TARGET}x the torch loop, {run['epochs']}-epoch run",
                    f"torch {model}, kplug {how}",
                    f"loop time / kplug time {ratio['fit']:.2f} (CPU {ratio['cpu']:.2f})",
                    _verdict(min(ratio["fit"], ratio["cpu"]) >= TORCH_RUN_TARGET),
                ]
            )
    for backend, found in results["backends"].items():
        cache = found.get("cache")
        if cache and cache.get("speedup"):
            rows.append(
                [
                    "5: cached features for a frozen backbone (their own row; no target)",
                    f"{backend} MiniLM head-only stage, {cache['epochs']} epochs",
                    f"stage speed-up {cache['speedup']:.1f}x",
                    "—",
                ]
            )
    if not rows:
        return []
    lines = [
        "## Targets",
        "",
        "From the sections below. A ratio given in wall time and in CPU seconds (*CPU*: the process's, all "
        "threads) meets its target only if both do: on a loaded machine wall times swing with the other "
        "jobs. The first column names the section (1) or issue 20's item (3, 4, 5) the target comes from.",
        "",
    ]
    return lines + _table(["target", "where", "measured", "verdict"], rows)


def write_markdown(results: dict[str, Any], path: Path, json_path: Path | None = None) -> None:
    """Write BENCHMARKS.md for ``results`` (the JSON that benchmarks/run.py collects)."""
    info = results["machine"]
    loads = [
        f"{backend}: {found['load_before'][0]:.1f} -> {found['load_after'][0]:.1f}"
        for backend, found in results["backends"].items()
        if "load_before" in found
    ]
    lines = [
        "# kplug benchmarks",
        "",
        "Generated by `benchmarks/run.py` (`nox -s bench`); do not edit by hand — notes come from "
        "`benchmarks/notes.md`.",
        "",
        f"- command: `{results['command']}` (worker options: `{' '.join(results['worker_options']) or 'defaults'}`)",
        f"- run: {results['started']} to {results.get('finished', '?')} UTC"
        + (f" ({results['stopped']})" if results.get("stopped") else ""),
        f"- machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v),
        "- raw numbers: `" + (str(json_path.name) if json_path else "results.json") + "` (every repeat)",
        "- torch intra-op threads (torch loop and Keras-on-torch): "
        + ", ".join(f"{b}: {f.get('torch_threads', '?')}" for b, f in results["backends"].items()),
        *(
            [
                f"- sections copied from an earlier run ({results['reused']['started']}, "
                f"`{results['reused']['command']}`): {', '.join(results['reused']['sections'])}"
            ]
            if results.get("reused", {}).get("sections")
            else []
        ),
        "- 1-minute load average at each backend's start -> end: " + "; ".join(loads),
        "",
        "Noise: this machine's cores are shared with other jobs, so single timings vary a lot (see the "
        "*spread* columns: per-repeat ratio extremes around the median). All comparisons alternate their "
        "sides inside one process, with the order rotating every repeat, so contention hits every side "
        "alike; compare ratios, not absolute times.",
        "",
    ]
    lines += targets_section(results)
    for section in (
        overhead_section,
        settings_section,
        peak_section,
        pipeline_section,
        rss_section,
        scaling_section,
    ):
        lines += section(results)
    lines += text_section(results)
    lines += cache_section(results)
    lines += run20_section(results)
    if NOTES.exists():
        lines += [NOTES.read_text().strip(), ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    # Re-render the markdown from a saved JSON: python benchmarks/report.py results.json BENCHMARKS.md
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    write_markdown(json.loads(source.read_text()), target, json_path=source)
