"""What every backend checks in-process: registration, refusal by backend, auto, doctor, honesty checks."""

from __future__ import annotations

import json

import keras
import kplug
import numpy as np
import pytest
from case import run_config
from kplug.cli import main
from kplug.distribution import launch

import kplug_distribute
from kplug_distribute.batches import ArrayBatches, ProcessShard

BACKEND = keras.backend.backend()
STRATEGIES = {"data-parallel": "jax", "model-parallel": "jax", "mirrored": "tensorflow", "ddp": "torch"}


@pytest.fixture
def plugins():
    return kplug.load_plugins([kplug_distribute], entry_points=False)


def test_registers_one_strategy_per_backend(plugins):
    for name, backend in STRATEGIES.items():
        component = plugins.registry.get("distribution", name)
        assert component.backends == (backend,)
        assert component.provider.startswith("kplug_distribute")


@pytest.mark.parametrize("name", [n for n, b in STRATEGIES.items() if b != BACKEND])
def test_other_backends_strategies_are_refused_at_validation(name, plugins, tmp_path):
    with pytest.raises(kplug.ConfigError) as error:
        kplug.Trainer(run_config(str(tmp_path / "run"), {"name": name}), plugins=plugins)
    assert (
        f"distribution '{name}' does not run on the {BACKEND} backend; it supports {STRATEGIES[name]}"
        in str(error.value)
    )


def test_auto_on_one_device_trains_on_one_device(plugins, tmp_path):
    result = kplug.fit(run_config(str(tmp_path / "run"), {"name": "auto"}), plugins=plugins)
    placement = result.report["distribution"]
    assert (
        placement["strategy"] == "single-device"
        and placement["replicas"] == 1
        and placement["processes"] == 1
    )


def test_doctor_shows_what_auto_chooses(monkeypatch, capsys):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "distribute")
    assert main(["doctor"]) in (0, 1)
    facts = json.loads(capsys.readouterr().out)
    assert facts["distribution_auto"]["strategy"] == "single-device"  # one CPU device in this process
    assert "kplug-distribute" in json.dumps(facts["plugins"])


def test_a_single_process_strategy_in_a_launched_group_is_refused(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(kplug.ConfigError) as error:
        kplug.fit(run_config(str(tmp_path / "run"), {"name": "single-device"}), plugins=plugins)
    assert "one of WORLD_SIZE=2 launched together" in str(error.value)
    assert "each process would train its own model" in str(error.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.backends("jax")
def test_data_parallel_on_one_device_is_refused(plugins, tmp_path):
    with pytest.raises(kplug.ConfigError) as error:
        kplug.fit(run_config(str(tmp_path / "run"), {"name": "data-parallel"}), plugins=plugins)
    assert "only 1 device (cpu:0) is available, so nothing would run in parallel" in str(error.value)
    assert "--xla_force_host_platform_device_count" in str(error.value)


def test_launch_refuses_zero_processes():
    with pytest.raises(kplug.ConfigError, match="--nproc 0"):
        launch(["train", "run.yaml"], 0)


def test_process_shards_make_up_each_global_batch():
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = np.arange(20)
    batches = ArrayBatches(x, y, batch_size=8, seed=3)
    again = ArrayBatches(x, y, batch_size=8, seed=3)
    shards = [ProcessShard(ArrayBatches(x, y, batch_size=8, seed=3), rank, 2) for rank in range(2)]
    assert len(batches) == 3 and shards[0].num_batches == 3
    for index in range(3):
        whole_x, whole_y = batches[index]
        np.testing.assert_array_equal(whole_y, again[index][1])  # same order in every process
        parts = [shard[index] for shard in shards]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole_x)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole_y)
    first = batches[0][1].copy()
    batches.on_epoch_end()
    assert sorted(np.concatenate([batches[i][1] for i in range(3)])) == list(range(20))
    assert not np.array_equal(first, batches[0][1])  # reshuffled each epoch
