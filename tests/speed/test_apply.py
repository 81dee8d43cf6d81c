"""kplug bench --apply writes train.compile into the YAML file (rest untouched) and kplug train uses it."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import yaml

import kplug
from kplug.cli.main import main
from kplug.config.compile_record import read_record
from kplug.speed.apply import write_compile_settings

BACKEND = keras.backend.backend()
SETTINGS = {"jit_compile": False, "steps_per_execution": 8}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (
            "name: x  # kept\ntrain:\n  # rate\n  epochs: 3\noutput: {dir: r}\n",
            "name: x  # kept\ntrain:\n  # rate\n  compile: {jit_compile: false, steps_per_execution: 8}\n"
            "  epochs: 3\noutput: {dir: r}\n",
        ),
        (
            "train:\n  compile:\n    jit_compile: true\n  batch_size: 8\n",
            "train:\n  compile: {jit_compile: false, steps_per_execution: 8}\n  batch_size: 8\n",
        ),
        ("name: x", "name: x\ntrain:\n  compile: {jit_compile: false, steps_per_execution: 8}\n"),
    ],
    ids=["added", "replaced", "no-train-section"],
)
def test_compile_settings_are_written_and_nothing_else_changes(tmp_path, before, after):
    path = tmp_path / "run.yaml"
    path.write_text(before)
    write_compile_settings(path, SETTINGS)
    assert path.read_text() == after


@pytest.mark.slow
def test_apply_writes_settings_that_kplug_train_uses(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(tmp_path / "cache"))
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    path = tmp_path / "run.yaml"
    path.write_text(
        "name: blobs  # the user's comment\n"
        "data: {source: npz, options: {path: blobs.npz}, split: {validation: 0.2}}\n"
        "model: {backbone: {name: mlp, options: {units: [16]}}, heads: [{name: classification}]}\n"
        "train:\n  epochs: 2\n  batch_size: 32\n  verbose: 0\n"
        "output: {dir: runs/blobs}\n"
    )
    spe = 1 if BACKEND == "torch" else 2
    chosen = f"jit_compile=false,steps_per_execution={spe}"
    assert (
        main(["bench", str(path), "--backends", BACKEND, "--settings", chosen, "--steps", "4", "--apply"])
        == 0
    )
    written = yaml.safe_load(path.read_text())
    assert written["train"]["compile"] == {"jit_compile": False, "steps_per_execution": spe}
    assert path.read_text().startswith("name: blobs  # the user's comment\n")
    assert read_record(kplug.load_config(path))["recommended"]["backend"] == BACKEND
    assert main(["train", str(path)]) == 0
    report = json.loads((tmp_path / "runs/blobs/report.json").read_text())
    assert (report["compile"]["jit_compile"], report["compile"]["steps_per_execution"]) == (False, spe)
    assert report["compile"]["bench"]["backend"] == BACKEND
