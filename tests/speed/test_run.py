"""kplug.bench runs each probe in a child process per backend and recommends the fastest full run."""

from __future__ import annotations

import importlib.util

import keras
import pytest
from conftest import blob_config

import kplug
from kplug.cli.main import main
from kplug.speed import run as bench_run
from kplug.speed.candidates import candidates, parse_settings

BACKEND = keras.backend.backend()


def fake_probe(rates):
    """A run_probe that measures ``rates[backend][steps_per_execution]`` (None: fails)."""

    def run_probe(config, backend, settings, steps, timeout, workdir):
        probe = bench_run.Probe(backend, settings)
        rate = rates[backend].get(settings["steps_per_execution"])
        if rate is None:
            probe.error = "ValueError: out of memory"
            return probe
        probe.result = {
            "settings": settings,
            "samples_per_second": rate,
            "compile_seconds": 1.0,
            "train_examples": 1000,
            "stage_epochs": [2],
            "estimate_seconds": 2000 / rate + 1.0,
        }
        return probe

    return run_probe


def test_the_fastest_probe_is_recommended_and_a_failure_is_one_line(blobs, monkeypatch):
    x, y = blobs
    monkeypatch.setattr(bench_run, "installed_backends", lambda: ["jax", "tensorflow"])
    monkeypatch.setattr(
        bench_run, "run_probe", fake_probe({"jax": {1: 500.0}, "tensorflow": {1: 300.0, 8: 900.0}})
    )
    lines = []
    result = kplug.bench(blob_config(x, y), progress=lines.append)
    assert result.best.backend == "tensorflow"
    assert result.best.settings == {"jit_compile": False, "steps_per_execution": 8}
    assert result.best_per_backend()["jax"].rate == 500.0
    failed = [line for line in lines if "failed" in line]  # jax with steps_per_execution=8
    assert len(failed) == 1
    assert "failed: ValueError: out of memory" in failed[0]
    assert "\n" not in failed[0]
    assert "Recommended: tensorflow" in result.summary()


def test_a_probe_that_runs_too_long_fails_with_its_reason(blobs):
    x, y = blobs
    result = kplug.bench(blob_config(x, y), backends=[BACKEND], settings=["default"], timeout=1.0)
    assert [probe.error for probe in result.probes] == ["timed out after 1 s"]
    assert result.best is None


def test_settings_parse_and_torch_leaves_out_several_steps():
    assert parse_settings("jit_compile=true,steps_per_execution=8") == {
        "jit_compile": True,
        "steps_per_execution": 8,
    }
    assert candidates("torch", ["jit_compile=false,steps_per_execution=8", "default"]) == [
        {"jit_compile": False, "steps_per_execution": 1}
    ]
    with pytest.raises(kplug.ConfigError, match="steps_per_execution must be a positive integer"):
        parse_settings("steps_per_execution=fast")


def test_bad_config_and_options_are_clear_errors(tmp_path, capsys):
    good = "data: {source: npz, options: {path: x.npz}}\nmodel: {backbone: {name: mlp}, heads: [{name: classification}]}\n"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good + "train: {compile: {steps_per_execution: 0}}\n")
    assert main(["bench", str(bad)]) == 2
    assert "train.compile.steps_per_execution = 0: Input should be greater than 0" in capsys.readouterr().err
    (tmp_path / "good.yaml").write_text(good)
    assert main(["bench", str(tmp_path / "good.yaml"), "--backends", "theano"]) == 2
    assert (
        "--backends: unknown backend 'theano'; choose from jax, tensorflow, torch" in capsys.readouterr().err
    )


@pytest.mark.slow
def test_two_backends_in_child_processes(blobs):
    x, y = blobs
    other = next(b for b in ("jax", "tensorflow", "torch") if b != BACKEND and importlib.util.find_spec(b))
    result = kplug.bench(blob_config(x, y), backends=[BACKEND, other], settings=["default"], steps=8)
    assert [probe.backend for probe in result.probes] == [BACKEND, other]
    assert all(probe.error is None and probe.rate > 0 for probe in result.probes), result.summary()
    assert result.best.estimate == min(probe.estimate for probe in result.probes)
