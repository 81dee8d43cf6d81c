"""kplug-mlflow: what a run logs is read back from the MLflow store and compared with metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import kplug
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import kplug_mlflow


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS", "KPLUG_TRACE_PLUGINS"):
        monkeypatch.delenv(name, raising=False)


class InterruptAt:
    """Presses Ctrl-C at the end of one epoch."""

    def __init__(self, epoch: int | None) -> None:
        self.epoch = epoch

    @kplug.hookimpl
    def kplug_on_epoch_end(self, run, epoch, logs):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def plugins(*extra: Any) -> kplug.Plugins:
    """Built-ins plus this plugin passed in Python: hermetic, whatever else is installed."""
    return kplug.load_plugins([kplug_mlflow, *extra], entry_points=False)


def run_config(rows: int = 160) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    y = np.arange(rows) % 2
    x = (rng.normal(0.0, 1.0, size=(rows, 4)) + np.where(y[:, None] == 1, 1.5, -1.5)).astype("float32")
    return {
        "name": "flow",
        "seed": 2,
        "data": {"source": "arrays", "options": {"x": x, "y": y}, "split": {"validation": 0.2, "test": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {
            "batch_size": 16,
            "verbose": 0,
            "optimizer": {"learning_rate": 0.01},
            "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 2, "learning_rate": 0.003}],
        },
        "loggers": ["mlflow"],
        "output": {"dir": "runs/flow"},
    }


def read_csv(run_dir: Path) -> list[dict[str, float]]:
    with (run_dir / "metrics.csv").open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def the_run(run_dir: Path) -> tuple[MlflowClient, Any]:
    client = MlflowClient(tracking_uri=kplug_mlflow.local_tracking_uri(run_dir))
    experiment = client.get_experiment_by_name("flow")  # the store also has MLflow's "Default"
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def latest_by_step(client: MlflowClient, run_id: str, key: str) -> dict[int, float]:
    """Metric history of ``key``: the last value logged at each step (a resumed epoch is logged again)."""
    values: dict[int, float] = {}
    for metric in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
        values[metric.step] = metric.value
    return values


def test_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "mlflow")
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert loaded.registry.get("logger", "mlflow").provider.startswith("kplug-mlflow 0.1.0")


def test_store_holds_params_epoch_metrics_and_the_run_directory() -> None:
    result = kplug.fit(run_config(), plugins=plugins())
    rows = read_csv(result.run_dir)
    assert (result.run_dir / "mlruns" / "mlflow.db").is_file()
    client, run = the_run(result.run_dir)
    assert run.info.status == "FINISHED" and run.info.run_name == "flow"
    params = run.data.params
    assert params["train.optimizer.learning_rate"] == "0.01"
    assert params["train.stages.1.optimizer.learning_rate"] == "0.003"  # where the resolved config keeps it
    assert params["loggers.0.name"] == "mlflow"
    assert params["data.options.x"] == "<array float32 (160, 4)>"
    for column in ("loss", "accuracy", "val_loss", "val_accuracy"):
        logged = latest_by_step(client, run.info.run_id, column)
        assert sorted(logged) == [0, 1, 2, 3]  # one MLflow run over both stages
        assert [logged[step] for step in range(4)] == pytest.approx([r[column] for r in rows], rel=1e-6)
    rates = latest_by_step(client, run.info.run_id, "learning_rate")
    assert [rates[step] for step in range(4)] == pytest.approx([0.01, 0.01, 0.003, 0.003])
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"], rel=1e-6)
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "metrics.csv", "model.keras", "report.json", "labels.json"} <= artifacts
    assert "mlruns" not in artifacts and "checkpoints" not in artifacts
    local = Path(client.download_artifacts(run.info.run_id, "metrics.csv", dst_path="downloaded"))
    assert local.read_text() == (result.run_dir / "metrics.csv").read_text()


def test_a_resumed_run_continues_the_same_mlflow_run() -> None:
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(run_config(), plugins=plugins(InterruptAt(2)))
    run_dir = Path("runs/flow")
    client, run = the_run(run_dir)
    assert run.info.status == "RUNNING"
    result = kplug.fit(run_config(), resume=run_dir, plugins=plugins())
    client, resumed = the_run(run_dir)  # still exactly one run
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    rows = read_csv(result.run_dir)
    logged = latest_by_step(client, run.info.run_id, "val_loss")
    assert [logged[step] for step in range(4)] == pytest.approx([r["val_loss"] for r in rows], rel=1e-6)


def test_bad_option_fails_before_anything_is_written() -> None:
    config = run_config()
    config["loggers"] = [{"name": "mlflow", "options": {"experiments": "x"}}]
    with pytest.raises(kplug.ConfigError, match="no option 'experiments'. Did you mean 'experiment'"):
        kplug.fit(config, plugins=plugins())
    assert not Path("runs").exists()
