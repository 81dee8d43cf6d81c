"""Loggers: built once per run, the built-in TensorBoard logger read back and compared with metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug

pytest.importorskip("tensorboard")
pytest.importorskip("tensorflow")


def read_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    """Every scalar of the event files in ``log_dir``: tag -> {step: value}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    scalars: dict[str, dict[int, float]] = {}
    for tag in accumulator.Tags()["tensors"]:
        for event in accumulator.Tensors(tag):
            values = keras.ops.convert_to_numpy(_tensor_value(event.tensor_proto))
            if values.dtype.kind == "f":
                scalars.setdefault(tag, {})[event.step] = float(values)
    return scalars


def read_text(log_dir: Path, tag: str) -> str:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    (event,) = accumulator.Tensors(tag)
    return _tensor_value(event.tensor_proto).item().decode()


def _tensor_value(proto):
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(proto)


def read_metrics_csv(run_dir: Path) -> list[dict[str, float]]:
    with (run_dir / "metrics.csv").open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def test_tensorboard_logs_what_metrics_csv_holds_over_every_stage(blobs, plugins) -> None:
    x, y = blobs
    config = blob_config(
        x,
        y,
        loggers=["tensorboard"],
        train={
            "batch_size": 32,
            "verbose": 0,
            "optimizer": {"learning_rate": 0.01},
            "stages": [
                {"epochs": 2, "trainable": ["heads/*"]},
                {"epochs": 2, "learning_rate": 0.002},
            ],
        },
    )
    result = kplug.fit(config, plugins=plugins)
    rows = read_metrics_csv(result.run_dir)
    assert len(rows) == 4
    train = read_scalars(result.run_dir / "tensorboard" / "train")
    validation = read_scalars(result.run_dir / "tensorboard" / "validation")
    for index, row in enumerate(rows):  # one log over both stages: steps 0..3
        assert train["epoch_loss"][index] == pytest.approx(row["loss"], rel=1e-6)
        assert train["epoch_accuracy"][index] == pytest.approx(row["accuracy"], rel=1e-6)
        assert validation["epoch_loss"][index] == pytest.approx(row["val_loss"], rel=1e-6)
        assert validation["epoch_accuracy"][index] == pytest.approx(row["val_accuracy"], rel=1e-6)
    rates = [train["epoch_learning_rate"][step] for step in range(4)]
    assert rates == pytest.approx([0.01, 0.01, 0.002, 0.002])
    text = read_text(result.run_dir / "tensorboard" / "train", "config")
    assert "learning_rate: 0.002" in text and "- name: tensorboard" in text


def test_a_logger_from_a_plugin_is_built_once_and_sees_the_finished_run(blobs) -> None:
    events: list[tuple[str, object]] = []

    class Recorder(keras.callbacks.Callback):
        def __init__(self, run_dir: Path, run_config: kplug.RunConfig, tag: str = "r") -> None:
            super().__init__()
            events.append(("built", (run_dir, run_config.name, tag, run_dir.exists())))

        def on_epoch_end(self, epoch, logs=None):
            events.append(("epoch", epoch))

        def on_run_end(self, result):
            events.append(("end", sorted(p.name for p in result.run_dir.iterdir())))

    class Plugin:
        @kplug.hookimpl
        def kplug_register_loggers(self, register):
            register("recorder", Recorder)

    x, y = blobs
    config = blob_config(
        x,
        y,
        loggers=[{"name": "recorder", "options": {"tag": "t"}}],
        train={"verbose": 0, "stages": [{"epochs": 1}, {"epochs": 2}]},
    )
    result = kplug.fit(config, plugins=kplug.load_plugins([Plugin()], entry_points=False))
    assert events[0] == ("built", (Path("runs/blobs"), "blobs", "t", False))
    assert [e for e in events if e[0] == "epoch"] == [("epoch", 0), ("epoch", 1), ("epoch", 2)]
    assert events[-1][0] == "end" and {"model.keras", "report.json"} <= set(events[-1][1])
    assert [e[0] for e in events].count("built") == 1
    # the finished run is evaluated where the logger's plugin is not installed
    plugins = kplug.load_plugins(entry_points=False)
    with pytest.raises(kplug.ConfigError, match=r"loggers\[0\].name: Unknown logger 'recorder'"):
        kplug.fit(config, plugins=plugins)  # resolving the whole config needs the logger ...
    metrics = kplug.evaluate("runs/blobs", data={"x": x, "y": y}, plugins=plugins)  # ... evaluating does not
    logits = keras.ops.convert_to_numpy(result.model.predict(x, verbose=0))
    assert metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(axis=1) == y), abs=1e-6)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    assert metrics["loss"] == pytest.approx(float(keras.ops.convert_to_numpy(loss)), rel=1e-4)


def test_unknown_logger_and_bad_option_fail_before_anything_is_written(blobs, plugins) -> None:
    x, y = blobs
    with pytest.raises(kplug.ConfigError, match=r"loggers\[0\].name: Unknown logger 'tensorbord'"):
        kplug.fit(blob_config(x, y, loggers=["tensorbord"]), plugins=plugins)
    with pytest.raises(kplug.ConfigError, match="tensorboard has no option 'freq'"):
        kplug.fit(
            blob_config(x, y, loggers=[{"name": "tensorboard", "options": {"freq": 1}}]), plugins=plugins
        )
    with pytest.raises(kplug.ConfigError, match="inside the run directory"):
        kplug.fit(
            blob_config(x, y, loggers=[{"name": "tensorboard", "options": {"log_dir": "../tb"}}]),
            plugins=plugins,
        )
    assert not Path("runs").exists()
