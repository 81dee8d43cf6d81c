"""Smoke test of the benchmark harness (benchmarks/): one tiny configuration on the current backend.

Nothing here is timed or compared against a threshold; it checks that the harness runs, that
the three ways of building each model agree, and that the report renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_models  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import worker  # noqa: E402


def test_the_three_builds_of_each_model_have_the_same_parameters():
    torch = __import__("torch")
    for spec in bench_models.SPECS.values():
        plain = bench_models.plain_keras_model(spec).count_params()
        native = sum(p.numel() for p in bench_models.torch_model(spec).parameters())
        assert plain == native
        assert native > 0 and torch is not None


def test_worker_runs_a_tiny_configuration_and_the_report_renders(tmp_path):
    out = tmp_path / "found.json"
    worker.main(
        [
            "--sections", "peak,overhead,pipeline,scaling",
            "--models", "mlp",
            "--repeats", "1",
            "--warmup", "0",
            "--epochs", "2",
            "--batch", "64",
            "--mlp-size", "128",
            "--scaling-batches", "64",
            "--scaling-factors", "1,2",
            "--matmul-size", "64",
            "--out", str(out),
        ]
    )  # fmt: skip
    found = json.loads(out.read_text())
    backend = keras.backend.backend()
    assert found["backend"] == backend
    assert set(found["peak"]) == {"numpy", backend}
    mlp = found["overhead"]["mlp"]
    assert set(mlp["sides"]) == {"plain", "plain_backup", "kplug", "kplug_no_epoch_checkpoint", "torch_loop"}
    assert mlp["size"] == 128 and mlp["parameters"] == 784 * 256 + 256 + 256 * 10 + 10
    for side in mlp["sides"].values():
        assert len(side["runs"]) == 1 and len(side["runs"][0]["epochs"]) == 2
    assert found["pipeline"]["read_examples"] == 2000
    assert set(found["scaling"]["data"]) == {"1", "2"}
    assert found["scaling"]["data"]["2"]["size"] == 2 * 128

    results = {
        "command": "python benchmarks/run.py --quick",
        "worker_options": [],
        "started": "now",
        "machine": run.machine(),
        "backends": {backend: found},
        "rss": {backend: {"kplug": {"peak_rss_mb": 1.0, "rss_before_training_mb": 0.5}}},
        "text": {"skipped": "no text plugin"},
    }
    markdown = tmp_path / "BENCHMARKS.md"
    report.write_markdown(results, markdown)
    text = markdown.read_text()
    for title in (
        "plain Keras",
        "hand-written PyTorch loop",
        "machine's limit",
        "Input pipeline",
        "Peak resident",
        "Scaling",
        "Not run: no text plugin",
    ):
        assert title in text
    assert "`python benchmarks/run.py --quick`" in text
