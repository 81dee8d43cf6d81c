"""What every backend checks in-process: registration, refusal by backend, auto, doctor, honesty checks."""

from __future__ import annotations

import json

import keras
import kplug
import numpy as np
import pytest
from case import run_config
from kplug.testing import TrainingBatches, launch, run_cli

import kplug_distribute
from kplug_distribute.batches import ProcessShard

BACKEND = keras.backend.backend()
STRATEGIES = {
    "data-parallel": "jax",
    "model-parallel": "jax",
    "mirrored": "tensorflow",
    "multi-worker-mirrored": "tensorflow",
    "ddp": "torch",
}


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


AUTO_OFFERS = {
    "jax": ["data-parallel"],
    "tensorflow": ["multi-worker-mirrored", "mirrored"],
    "torch": ["ddp"],
}


def test_doctor_shows_what_auto_tries(monkeypatch, capsys):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "distribute")
    assert run_cli(["doctor"]) in (0, 1)
    facts = json.loads(capsys.readouterr().out)
    auto = facts["distribution_auto"]
    assert [offer["name"] for offer in auto["tries"]] == AUTO_OFFERS[BACKEND]  # highest priority first
    assert (
        auto["tries"][0]["provider"].startswith("kplug-distribute") and auto["otherwise"] == "single-device"
    )
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
    """Two processes reading kplug's batch stream keep complementary halves of every global batch."""
    x = np.arange(40, dtype="float32").reshape(20, 2)
    y = np.arange(20)
    batches = TrainingBatches(x, y, batch_size=8, seed=3)
    shards = [ProcessShard(TrainingBatches(x, y, batch_size=8, seed=3), rank, 2) for rank in range(2)]
    assert batches.batches_per_epoch == 3 and shards[0].num_batches is None  # an endless stream
    epochs = []
    for index in range(6):  # two epochs of the stream
        whole_x, whole_y = batches[index]
        parts = [shard[index] for shard in shards]
        assert [len(p[1]) for p in parts] == [len(whole_y) // 2] * 2
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole_x)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole_y)
        epochs.append(whole_y)
    first, second = np.concatenate(epochs[:3]), np.concatenate(epochs[3:])
    assert sorted(first) == sorted(second) == list(range(20))  # each epoch visits every example once
    assert not np.array_equal(first, second)  # in a new order


def test_a_shard_refuses_a_batch_that_does_not_split():
    x, y = np.zeros((9, 2), dtype="float32"), np.zeros(9)
    with pytest.raises(ValueError, match="batch 0 has 9 rows, which do not split over 2 processes"):
        ProcessShard(TrainingBatches(x, y, batch_size=9, seed=0), 0, 2)[0]


@pytest.mark.parametrize("masked", [False, True])
def test_batchnorm_moments_of_two_replicas_are_those_of_the_whole_batch(masked):
    """Two replicas' halves of a batch, their sums all-reduced: the whole batch's Keras moments."""
    from kplug_distribute.batchnorm import global_moments

    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(8, 3, 4)).astype("float32")
    mask = rng.random((8, 3)) > 0.3 if masked else None
    layer = keras.layers.BatchNormalization()
    layer.build(x.shape)

    def rows(part):
        return keras.ops.convert_to_tensor(x[part]), None if mask is None else keras.ops.convert_to_tensor(
            mask[part]
        )

    expected = [keras.ops.convert_to_numpy(m) for m in layer._moments(*rows(slice(None)))]
    second = []
    global_moments(layer, *rows(slice(4, 8)), lambda local: second.append(local) or local)
    found = global_moments(layer, *rows(slice(0, 4)), lambda local: local + second[0])
    for value, wanted in zip(found, expected, strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(value), wanted, rtol=1e-5, atol=1e-5)
    alone = global_moments(layer, *rows(slice(0, 4)), lambda local: local)  # per-replica statistics
    assert np.abs(keras.ops.convert_to_numpy(alone[0]) - expected[0]).max() > 0.1
