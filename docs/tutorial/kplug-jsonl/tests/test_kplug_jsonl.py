"""The tutorial plugin: installs and is discovered, reads JSON Lines, trains, validates its options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kplug
import numpy as np
import pytest

import kplug_jsonl

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS", "KPLUG_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


def write_jsonl(path: Path, rows: int = 200, labelled: bool = True) -> Path:
    """Two classes, "low" and "high", told apart by the sum of 3 features."""
    rng = np.random.default_rng(0)
    with path.open("w") as handle:
        for features in rng.normal(size=(rows, 3)).round(3).tolist():
            record = {"features": features}
            if labelled:
                record["label"] = "high" if sum(features) > 0 else "low"
            handle.write(json.dumps(record) + "\n")
    return path


def config(path: Path) -> dict:
    return {
        "name": "jsonl-demo",
        "data": {"source": "jsonl", "options": {"path": str(path)}, "split": {"validation": 0.25}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [{"name": "classification"}],
        },
        "augment": [{"name": "feature-dropout", "options": {"rate": 0.1}}],
        "train": {"epochs": 8, "batch_size": 16, "verbose": 0, "optimizer": {"learning_rate": 0.01}},
    }


def test_installs_and_is_discovered(tmp_path: Path) -> None:
    """A real (non-editable) install into a fresh folder; a new process finds it by entry point."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(PACKAGE)],
        check=True,
    )
    assert (target / "kplug_jsonl" / "__init__.py").is_file()
    code = (
        "import kplug; p = kplug.load_plugins(); "
        "print(p.failures, p.registry.get('dataset', 'jsonl').provider, "
        "p.registry.get('augmentation', 'feature-dropout').provider)"
    )
    # the installed copy comes first; KPLUG_LOAD_PLUGINS keeps other installed plugins out
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    env["KPLUG_LOAD_PLUGINS"] = "jsonl"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "kplug-jsonl", "0.1.0", "kplug-jsonl", "0.1.0"]


def test_trains_and_evaluates_another_file(tmp_path: Path) -> None:
    plugins = kplug.load_plugins([kplug_jsonl], entry_points=False)
    result = kplug.fit(config(write_jsonl(tmp_path / "train.jsonl")), plugins=plugins)
    assert result.metrics["accuracy"] > 0.8
    assert result.model.get_layer("augment").get_layer("feature_dropout").rate == 0.1
    held_out = write_jsonl(tmp_path / "held_out.jsonl", rows=40)
    metrics = kplug.evaluate(result.run_dir, data=str(held_out), plugins=plugins)  # path_option at work
    assert metrics["accuracy"] > 0.8
    unlabelled = write_jsonl(tmp_path / "new.jsonl", rows=5, labelled=False)
    records = kplug.predict(result.run_dir, data=str(unlabelled), plugins=plugins)
    assert len(records) == 5 and {r["label"] for r in records} <= {"high", "low"}


def test_bad_input_names_the_problem(tmp_path: Path) -> None:
    plugins = kplug.load_plugins([kplug_jsonl], entry_points=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"features": [1, 2, 3], "label": "low"}\n{"features": "oops", "label": "high"}\n')
    with pytest.raises(kplug.DataError, match=r"bad.jsonl, line 2: expected a JSON object"):
        kplug.fit(config(bad), plugins=plugins)
    wrong_rate = config(write_jsonl(tmp_path / "train.jsonl"))
    wrong_rate["augment"] = [{"name": "feature-dropout", "options": {"rate": 1.5}}]
    with pytest.raises(kplug.ConfigError, match=r"options.rate = 1.5: Input should be less than 1"):
        kplug.fit(wrong_rate, plugins=plugins)
