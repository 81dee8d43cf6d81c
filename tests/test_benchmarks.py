"""Smoke test of the benchmark harness (benchmarks/): one tiny configuration on the current backend.

Nothing here is timed or compared against a threshold; it checks that the harness runs, that
the three ways of building each model agree, and that the report renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_models  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import worker  # noqa: E402


def copy_into_torch(model: keras.Model, native) -> None:
    """Give the torch twin the weights of the flat Keras model, layer by layer (NHWC -> NCHW)."""
    import torch

    twins = [m for m in native if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    layers = [layer for layer in model.layers if layer.weights]
    assert [type(layer).__name__ for layer in layers] == [
        {"Linear": "Dense", "Conv2d": "Conv2D"}[type(m).__name__] for m in twins
    ]
    twins = iter(twins)
    flattened = None  # the (h, w, c) map whose flattening the next Dense reads
    for layer in model.layers:
        if isinstance(layer, keras.layers.Flatten) and len(layer.input.shape) == 4:
            flattened = layer.input.shape[1:]
        if not layer.weights:
            continue
        twin = next(twins)
        kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
        if isinstance(twin, torch.nn.Conv2d):
            kernel = kernel.transpose(3, 2, 0, 1)
        else:
            if flattened is not None:  # Keras flattens in (h, w, c) order, torch in (c, h, w) order
                kernel = kernel.reshape(*flattened, -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
                flattened = None
            kernel = kernel.T
        twin.weight.data = torch.from_numpy(np.ascontiguousarray(kernel))
        twin.bias.data = torch.from_numpy(np.ascontiguousarray(bias))


def test_the_three_builds_of_each_model_compute_the_same_function():
    import torch

    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    for spec in bench_models.SPECS.values():
        plain = bench_models.plain_keras_model(spec)
        flat = bench_models.plain_keras_model(spec, nested=False)
        native = bench_models.torch_model(spec)
        assert plain.count_params() == flat.count_params() == sum(p.numel() for p in native.parameters())
        assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
        flat.set_weights(plain.get_weights())
        copy_into_torch(flat, native)
        expected = keras.ops.convert_to_numpy(plain(x))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(flat(x)), expected, rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            logits = native(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
        assert np.abs(expected).max() > 1e-2  # the logits are not all zero: the comparison says something


@pytest.mark.slow("jax", "torch")  # backend-independent logic: quick on tensorflow only
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
    assert set(mlp["sides"]) == {
        "plain",
        "plain_flat",
        "plain_backup",
        "kplug",
        "kplug_no_epoch_checkpoint",
        "torch_loop",
    }
    assert set(mlp["ratio_nesting"]) == {"fit", "fit_per_repeat", "steady"}
    assert set(mlp["checkpoint_write_ms"]) == {"keras_backup", "kplug"}
    assert all(ms > 0 for ms in mlp["checkpoint_write_ms"].values())
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
        "sub-models: nested/flat plain fit",
        "one write ms (keras / kplug)",
    ):
        assert title in text
    assert "`python benchmarks/run.py --quick`" in text


def test_the_minilm_table_gives_both_transformers_ratios_and_kplugs_overhead():
    sides = {
        side: {"samples_per_second": rate}
        for side, rate in {
            "transformers": 30.0,
            "transformers_onednn": 60.0,
            "plain": 50.0,
            "kplug": 45.0,
        }.items()
    }
    results = {"backends": {"torch": {"text": {"sides": sides}}}}
    row = next(line for line in report.text_section(results) if line.startswith("| torch"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:7] == ["30.0", "60.0", "50.0", "45.0", "**1.50**", "**0.75**"]
    assert cells[7] == "**1.11**"  # kplug's time over plain fit's


def test_a_minilm_side_that_could_not_run_is_shown_with_its_reason():
    sides = {
        "transformers": {"skipped": "ImportError: no transformers"},
        "kplug": {"samples_per_second": 40.0},
    }
    results = {"backends": {"jax": {"text": {"sides": sides}}}}
    row = next(line for line in report.text_section(results) if line.startswith("| jax"))
    assert "—" in row and "ImportError: no transformers" in row and "40.0" in row


def test_the_feature_cache_table_gives_the_median_speedup_of_the_repeats():
    def side(stage, epoch, features=0.0):
        return {
            "stage_seconds": stage,
            "steady_epoch_seconds": epoch,
            "runs": [{"feature_seconds": features}],
        }

    cache = {
        "size": 1000,
        "epochs": 10,
        "sides": {"uncached": side(100.0, 9.0), "cached": side(12.5, 0.3, 8.0)},
        "speedup": 8.0,
        "speedups": [7.0, 8.0, 9.0],
    }
    lines = report.cache_section(
        {"backends": {"tensorflow": {"cache": cache}, "jax": {"cache": {"skipped": "no"}}}}
    )
    row = next(line for line in lines if line.startswith("| tensorflow"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:5] == ["100.0", "12.5", "8.0", "**8.0x**"]
    assert cells[6] == "30x"
    assert "10 epochs on 1000 SST-2 sentences" in "\n".join(lines)
    assert any(line.startswith("| jax") and line.rstrip("| ").endswith("no") for line in lines)


def test_the_whole_run_section_gives_loop_time_over_each_sides_time(tmp_path):
    out = tmp_path / "found.json"
    worker.main(
        ["--sections", "run20", "--models", "mlp", "--run-epochs", "2", "--run-repeats", "1",
         "--mlp-size", "256", "--batch", "64", "--run-sides", "torch_loop,plain,plain_flat,kplug",
         "--out", str(out)]
    )  # fmt: skip
    run20 = json.loads(out.read_text())["run20"]
    mlp = run20["mlp"]
    sides = mlp["sides"]
    assert set(sides) == {"torch_loop", "plain", "plain_flat", "kplug"}  # kplug_compiled left out
    assert all(side["cpu_seconds"] > 0 and len(side["runs"][0]["epochs"]) == 2 for side in sides.values())
    kplug_vs_loop = mlp["ratios"]["kplug/torch_loop"]
    assert kplug_vs_loop["fit"] == sides["torch_loop"]["fit_seconds"] / sides["kplug"]["fit_seconds"]
    assert kplug_vs_loop["cpu"] == sides["torch_loop"]["cpu_seconds"] / sides["kplug"]["cpu_seconds"]

    # the table: a side twice as slow as the loop reads 0.50
    fake = {side: {"fit_seconds": 2.0, "cpu_seconds": 1.0} for side in ("kplug", "plain", "plain_flat")}
    fake["torch_loop"] = {"fit_seconds": 1.0, "cpu_seconds": 0.5}
    ratios = {
        f"{ours}/{theirs}": {"fit": fake[theirs]["fit_seconds"] / fake[ours]["fit_seconds"], "cpu": 0.5}
        for ours in ("kplug", "plain", "plain_flat")
        for theirs in ("torch_loop", "plain")
    }
    lines = report.run20_section(
        {
            "backends": {
                "torch": {"run20": {"epochs": 20, "mlp": {"size": 8, "sides": fake, "ratios": ratios}}}
            }
        }
    )
    row = next(line for line in lines if line.startswith("| torch | mlp | kplug |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3:10] == ["2.0", "1.0", "1.0", "0.50", "**0.50**", "1.00", "0.50"]
    header = next(line for line in lines if line.startswith("| backend |"))
    assert len(header.split("|")) == len(row.split("|"))  # a heading for every column
    assert "run of 20 epochs" in "\n".join(lines)


def test_the_flat_forward_prototype_trains_to_the_nested_weights(tmp_path):
    """``flat_forward.py`` (section 10's ``kplug_flat``): same updates, sub-models never called."""
    import flat_forward
    from conftest import blob_config

    import kplug
    from kplug.model.paths import variable_paths

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(96, 8)).astype("float32"), rng.integers(0, 3, 96)
    config = blob_config(x, y)
    config["model"]["backbone"]["options"] = {"units": [16], "dropout": 0.3}  # training must reach it
    config["train"] = {
        "verbose": 0,
        "batch_size": 16,
        "stages": [{"epochs": 1, "trainable": ["heads/*"]}, {"epochs": 1}],
    }
    trained = {}
    for flat in (False, True):
        config["output"] = {"dir": str(tmp_path / f"flat{flat}"), "checkpoint_every": 0}
        model = kplug.fit(config, plugins=worker.clock_plugins(flat)).model
        trained[flat] = {p: keras.ops.convert_to_numpy(v) for p, v in variable_paths(model).items()}
    assert list(trained[True]) == list(trained[False])
    for path, value in trained[True].items():
        np.testing.assert_allclose(value, trained[False][path], rtol=0, atol=1e-6, err_msg=path)

    backbone_calls = []
    backbone = model.get_layer("backbone")
    nested_call = backbone.call
    backbone.call = lambda *a, **k: backbone_calls.append(1) or nested_call(*a, **k)
    del model.call  # the plugin left the flat forward on: back to the nested call
    expected = keras.ops.convert_to_numpy(model(x[:8]))
    with flat_forward.flat_forward(model):
        flat_out = keras.ops.convert_to_numpy(model(x[:8]))
    assert len(backbone_calls) == 1  # the nested call only
    np.testing.assert_allclose(flat_out, expected, rtol=0, atol=1e-6)


def test_the_targets_table_meets_a_target_only_when_wall_and_cpu_both_do():
    def speedups(wall: float, cpu: float) -> dict:
        return {"speedup": wall, "cpu_speedup": cpu, "steady_epoch_seconds": 0.1}

    spe8 = '{"jit_compile": false, "steps_per_execution": 8}'
    xla = '{"jit_compile": true, "steps_per_execution": 1}'
    results = {
        "backends": {
            "tensorflow": {
                "settings": {
                    "mlp": {
                        spe8: {**speedups(1.5, 1.2), "kplug": speedups(1.6, 1.3)},  # met
                        xla: {**speedups(1.5, 1.2), "kplug": speedups(1.6, 1.1)},  # CPU behind: missed
                    }
                }
            },
            "torch": {
                "overhead": {"mlp": {"ratio_loop": {"fit": 1.03}}},  # over 1.02: missed
                "run20": {
                    "epochs": 20,
                    "mlp": {"ratios": {"kplug/torch_loop": {"fit": 0.9, "cpu": 0.79}}},  # missed
                    "cnn": {"ratios": {"kplug/torch_loop": {"fit": 0.8, "cpu": 0.85}}},  # met
                },
            },
        }
    }
    rows = {}
    for line in report.targets_section(results):
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[3] in ("**met**", "**missed**"):
            rows[(cells[0][:2], cells[1].split(",")[0], "XLA" in cells[0])] = cells[3]
    assert rows == {
        ("3:", "tensorflow mlp", False): "**met**",
        ("3:", "tensorflow mlp", True): "**missed**",
        ("1:", "torch mlp", False): "**missed**",
        ("4:", "torch mlp", False): "**missed**",
        ("4:", "torch cnn", False): "**met**",
    }


def test_reuse_copies_only_what_this_run_does_not_measure_nor_how_that_was_run():
    old = {
        "command": "python benchmarks/run.py",
        "started": "earlier",
        "backends": {"jax": {"peak": {"a": 1}, "settings": {"b": 2}, "settings_command": "by hand"}},
    }
    results = {"backends": {}, "rss": {}}
    run.reuse(results, old, measured={("jax", "settings")})
    assert results["backends"] == {"jax": {"peak": {"a": 1}}}
    assert results["reused"]["sections"] == ["jax/peak"]
