"""kplug tune: a small Optuna search finishes, prunes, resumes and writes normal run directories."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import blob_config

import kplug
from kplug.cli.main import main
from kplug.config.load import load_config

optuna = pytest.importorskip("optuna")
from kplug.tune.search import tune  # noqa: E402


def search_config(x, y, **tune_overrides):
    config = blob_config(x, y, train={"epochs": 2, "batch_size": 32, "verbose": 0})
    config["tune"] = {
        "metric": "val_accuracy",
        "direction": "maximize",
        "sampler": "random",
        "space": {
            "train.optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
            "train.batch_size": {"type": "categorical", "choices": [16, 32]},
            "model.backbone.options.units": {"type": "categorical", "choices": [[8], [16, 8]]},
        },
        **tune_overrides,
    }
    return config


def summary(folder: Path) -> list[dict[str, str]]:
    with (folder / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


class InterruptTrial:
    """Presses Ctrl-C at the end of the first epoch of one trial."""

    def __init__(self, trial_dir: str) -> None:
        self.trial_dir = trial_dir

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        if run.run_dir.name == self.trial_dir:
            raise KeyboardInterrupt


@pytest.mark.slow("jax", "torch")  # backend-independent logic: quick on tensorflow only
def test_three_trials_finish_as_run_directories_and_the_search_continues(blobs, plugins) -> None:
    x, y = blobs
    result = tune(search_config(x, y), trials=3, output="search", plugins=plugins)
    folder = Path("search")
    rows = summary(folder)
    assert [row["trial"] for row in rows] == ["0", "1", "2"]
    assert {row["state"] for row in rows} <= {"complete", "pruned"}
    assert (folder / "study.db").is_file()
    for row in rows:
        run_dir = Path(row["run_dir"])
        assert run_dir == folder / f"trial-00{row['trial']}"
        saved = load_config(run_dir / "config.yaml")  # a normal run config, no tune section
        assert saved.tune is None and saved.output.dir == str(run_dir)
        assert saved.train.optimizer.learning_rate == pytest.approx(
            float(row["train.optimizer.learning_rate"])
        )
        assert saved.train.batch_size == int(row["train.batch_size"])
        assert saved.model.backbone.options["units"] == yaml.safe_load(row["model.backbone.options.units"])
        with (run_dir / "metrics.csv").open() as handle:
            last = list(csv.DictReader(handle))[-1]
        assert float(row["val_accuracy"]) == pytest.approx(float(last["val_accuracy"]))
    completed = [row for row in rows if row["state"] == "complete"]
    best = max(completed, key=lambda row: float(row["val_accuracy"]))
    assert result.best_value == pytest.approx(float(best["val_accuracy"]))
    assert result.best_run_dir == Path(best["run_dir"])
    best_config = load_config(folder / "best.yaml")
    assert best_config.train.optimizer.learning_rate == pytest.approx(
        result.best_params["train.optimizer.learning_rate"]
    )
    assert best_config.tune is None and best_config.output.dir is None

    again = tune(search_config(x, y), trials=3, output="search", plugins=plugins)  # nothing left to do
    assert len(again.rows) == 3
    more = tune(search_config(x, y), trials=4, output="search", plugins=plugins)  # the same study, one more
    assert [row["trial"] for row in more.rows] == [0, 1, 2, 3]
    assert not (folder / ".tune.lock").exists()


@pytest.mark.slow("jax", "torch")  # backend-independent logic: quick on tensorflow only
def test_an_interrupted_search_reruns_the_interrupted_trial(blobs) -> None:
    x, y = blobs
    with pytest.raises(KeyboardInterrupt):
        tune(
            search_config(x, y),
            trials=3,
            output="search",
            plugins=kplug.load_plugins([InterruptTrial("trial-001")], entry_points=False),
        )
    assert not Path("search/.tune.lock").exists()
    result = tune(
        search_config(x, y), trials=3, output="search", plugins=kplug.load_plugins(entry_points=False)
    )
    states = [row["state"] for row in result.rows]
    assert states[1] == "fail" and states.count("fail") == 1
    assert len([s for s in states if s in ("complete", "pruned")]) == 3
    interrupted, retry = result.rows[1], result.rows[2]  # the interrupted values run again next
    for path in ("train.optimizer.learning_rate", "train.batch_size", "model.backbone.options.units"):
        assert retry[path] == interrupted[path]


def test_bad_trials_are_pruned_from_epoch_metrics(blobs, plugins) -> None:
    x, y = blobs
    config = search_config(
        x,
        y,
        metric="val_loss",
        direction="minimize",
        sampler="random",
        pruner={"name": "median", "startup_trials": 1, "warmup_epochs": 0},
        # a hopeless rate among good ones; seed 1 draws 0.02, 1e-7, 1e-7, 0.02
        space={
            "train.optimizer.learning_rate": {"type": "categorical", "choices": [0.05, 0.02, 0.01, 1.0e-7]}
        },
    )
    config["train"]["epochs"] = 3
    result = tune(config, trials=4, output="search", plugins=plugins)
    pruned = [row for row in result.rows if row["state"] == "pruned"]
    assert pruned, result.rows
    for row in pruned:  # only hopeless trials are stopped, and before their last epoch
        assert row["train.optimizer.learning_rate"] == 1.0e-7
        assert row["epochs"] < 3
        assert not (Path(row["run_dir"]) / "report.json").exists()
    assert result.best_params["train.optimizer.learning_rate"] != 1.0e-7


def test_search_errors_name_the_problem_before_any_trial(blobs, plugins) -> None:
    x, y = blobs
    with pytest.raises(kplug.ConfigError, match="no tune section"):
        tune(blob_config(x, y), trials=2, plugins=plugins)
    bad_path = search_config(x, y, space={"train.stages[0].epochs": {"type": "int", "low": 1, "high": 3}})
    with pytest.raises(kplug.ConfigError, match=r"index \[0\] does not exist"):
        tune(bad_path, trials=2, output="search", plugins=plugins)
    typo = search_config(
        x, y, space={"train.optimiser.learning_rate": {"type": "float", "low": 0.1, "high": 1}}
    )
    with pytest.raises(kplug.ConfigError, match="no field 'optimiser'"):
        tune(typo, trials=2, output="search", plugins=plugins)
    assert not Path("search").exists()
    with pytest.raises(kplug.ConfigError, match=r"tune.space.*low \(0.1\) must be below high \(0.01\)"):
        load_config(search_config(x, y, space={"seed": {"type": "float", "low": 0.1, "high": 0.01}}))
    with pytest.raises(kplug.ConfigError, match="tune.metric = 'val_auc': this run logs accuracy, loss"):
        tune(search_config(x, y, metric="val_auc"), trials=1, output="search", plugins=plugins)


def test_cli_tune_prints_the_summary_and_the_best_config(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")  # built-ins only, whatever is installed
    rng = np.random.default_rng(0)
    rows = ["f1,f2,label"] + [
        f"{a:.3f},{b:.3f},{int(a + b > 0)}" for a, b in rng.normal(size=(120, 2)).tolist()
    ]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    config = {
        "name": "cli-search",
        "data": {
            "source": "csv",
            "options": {"path": "data.csv", "label": "label"},
            "split": {"validation": 0.25},
        },
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 1, "verbose": 0},
        "tune": {
            "space": {
                "train.optimizer.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}
            }
        },
    }
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(config))
    assert main(["tune", "search.yaml", "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "trial  state     val_loss" in out and "train.optimizer.learning_rate" in out
    assert "runs/cli-search-tune/best.yaml" in out
    best = load_config(tmp_path / "runs" / "cli-search-tune" / "best.yaml")
    assert best.name == "cli-search" and best.tune is None
    assert main(["tune", "search.yaml", "--trials", "0"]) == 2
