"""The README demo (examples/sentiment/demo.py): its comparison logic, its configs, a tiny run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import kplug
import pytest

DEMO = Path(__file__).resolve().parents[3] / "examples" / "sentiment" / "demo.py"


@pytest.fixture(scope="module")
def demo():
    """The demo script, imported as a module."""
    spec = importlib.util.spec_from_file_location("sentiment_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def records(scores: dict[tuple[int, str], list[float]]) -> list[dict]:
    """Result records from ``{(labels, variant): [accuracy of seed 1, of seed 2, ...]}``."""
    return [
        {"labels": labels, "variant": variant, "seed": seed, "accuracy": accuracy}
        for (labels, variant), values in scores.items()
        for seed, accuracy in enumerate(values, 1)
    ]


def test_a_gain_is_clear_only_when_every_pretrained_seed_beats_every_scratch_seed(demo):
    rows = demo.summarise(
        records(
            {
                (100, "scratch"): [0.55, 0.61],
                (100, "frozen"): [0.62, 0.70],  # worst 0.62 > best scratch 0.61: clear
                (100, "fine-tuned"): [0.80, 0.60],  # worst 0.60 < best scratch 0.61: not clear
                (30, "scratch"): [0.50, 0.50],
                (30, "fine-tuned"): [0.49, 0.75],
            }
        )
    )
    assert [(row.labels, row.variant) for row in rows] == [
        (30, "fine-tuned"),
        (30, "scratch"),
        (100, "frozen"),
        (100, "fine-tuned"),
        (100, "scratch"),
    ]
    found = demo.verdicts(rows)
    assert found[100]["frozen"]["clear"] is True
    assert found[100]["frozen"]["gain"] == pytest.approx(0.08)
    assert found[100]["fine-tuned"]["clear"] is False
    assert found[100]["fine-tuned"]["gain"] == pytest.approx(0.12)
    assert found[30] == {"fine-tuned": {"gain": pytest.approx(0.12), "clear": False}}

    text = demo.table(rows, demo.Settings(seeds=(1, 2), test=400))
    assert "   100 labels, pretrained vs scratch: frozen +8.0 points (clear: every seed); " in text
    assert "fine-tuned +12.0 points (NOT clear: seeds overlap)" in text
    assert "   100  frozen       0.660   0.057  1: 0.620  2: 0.700" in text


def test_the_spread_of_one_seed_is_zero_and_a_tie_is_not_a_clear_gain(demo):
    rows = demo.summarise(records({(50, "scratch"): [0.6], (50, "frozen"): [0.6]}))
    assert [row.spread for row in rows] == [0.0, 0.0]
    assert demo.verdicts(rows)[50]["frozen"] == {"gain": 0.0, "clear": False}


def test_epochs_scale_with_the_labels_within_bounds(demo):
    assert demo.epochs(100, 500, 10) == 5
    assert demo.epochs(1000, 500, 10) == 1  # at least one
    assert demo.epochs(10, 500, 10) == 10  # at most most_epochs


@pytest.mark.parametrize("variant", ["frozen", "fine-tuned", "scratch"])
def test_every_variant_is_a_valid_config_on_the_repository_data(demo, variant, tmp_path):
    config = kplug.load_config(demo.run_config(variant, 100, 1, demo.Settings(), tmp_path))
    assert Path(config.data.options["path"]).is_file()
    assert config.data.limit == 100


@pytest.mark.slow
@pytest.mark.backends("jax")  # the backend nox -s demo runs it on (MiniLM is slowest on torch)
def test_the_demo_runs_end_to_end_and_writes_its_table_results_and_plot(demo, tmp_path):
    out = tmp_path / "demo"
    argv = ["--labels", "8", "--seeds", "1", "2", "--test", "16", "--sequence-length", "8", "--epochs", "1"]
    rows = demo.main([*argv, "--output", str(out)])

    assert [(row.variant, sorted(row.seeds)) for row in rows] == [
        ("frozen", [1, 2]),
        ("fine-tuned", [1, 2]),
        ("scratch", [1, 2]),
    ]
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 6
    assert "pretrained vs scratch" in (out / "table.txt").read_text()
    assert (out / "transfer.png").read_bytes()[:4] == b"\x89PNG"
    assert not (out / "frozen-8-seed1" / "model.keras").exists()  # the weights are not kept
    report = json.loads((out / "frozen-8-seed1" / "report.json").read_text())
    # the frozen encoder has no dropout, so its head trains on features computed once
    assert report["stages"][0]["feature_cache"] == {"used": True}
    assert all(run["cpu_seconds"] > 0 for run in results["runs"])
