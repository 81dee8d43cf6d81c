"""TensorFlow against one device: MirroredStrategy over 2 logical CPU devices, and
MultiWorkerMirroredStrategy over 2 processes started by ``kplug train --nproc 2``.

Logical devices can be set only before TensorFlow starts, so the one-process cases run in
one fresh process (``mirrored`` with ``cpu_devices: 2`` sets them up there).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import kplug
import pytest
import yaml
from case import run_config
from conftest import (
    CHECKPOINTS,
    MIDDLE,
    check_global_batchnorm,
    interrupted_copy,
    launch_cli,
    load_weights,
    max_difference,
    run_cases,
    weights,
)
from kplug.testing import metrics_history, read_metrics

import kplug_distribute

pytestmark = pytest.mark.backends("tensorflow")

TOLERANCE = 1e-5  # float32 sums in another order; measured 6e-8 here
MIRRORED = {"name": "mirrored", "options": {"cpu_devices": 2}}
UNEVEN = 226

CASES = [
    # 181 training rows (last batch 21) and 45 validation rows (last batch 13): for 2 replicas (mirrored
    # here, 2 workers below) kplug pads each last batch with a zero-weight row
    {"label": "mirrored", "distribution": MIRRORED, "npz": True, "overrides": {"limit": UNEVEN}},
    {"label": "uneven_single", "npz": True, "overrides": {"limit": UNEVEN}},
    {"label": "load_mirrored", "run": "mirrored"},
    {"label": "bad_batch", "distribution": MIRRORED, "overrides": {"train": {"batch_size": 31}}},
    {"label": "no_gpus", "distribution": {"name": "mirrored"}},
    {"label": "single_npz", "npz": True},  # the data the 2-worker run reads from a file
]
# In a process of their own: a second MirroredStrategy in one process restarts its collective keys and
# collides with the first one's all-reduces ("Shape mismatch in the collective instance 100").
BATCHNORM_CASES = [
    {"label": "mirrored_bn", "distribution": MIRRORED, "batchnorm": True},
    {"label": "single_bn", "batchnorm": True, "npz": True},  # and the 2-worker BatchNorm run's data
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-cases")
    return root, run_cases(root, CASES, "tensorflow")


def test_mirrored_equals_one_device(results):
    """Last batches that do not split over the 2 replicas too: the weights and metrics of one device."""
    root, found = results
    placement = found["mirrored"]["distribution"]
    assert placement["strategy"] == "mirrored" and placement["replicas"] == 2
    assert placement["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert set(placement["variables"].values()) == {"mirrored"}
    assert set(placement["padded_last_batch"]) == {"train", "validation"}
    single, mirrored = found["uneven_single"], found["mirrored"]
    for name in ("accuracy", "val_loss", "val_accuracy"):  # the logged training loss counts the padding row
        assert mirrored["history"][name] == pytest.approx(single["history"][name], abs=TOLERANCE)
    assert mirrored["metrics"] == pytest.approx(single["metrics"], abs=TOLERANCE)  # the end-of-run evaluation
    difference = max_difference(
        weights(root / "uneven_single/weights.npz"), weights(root / "mirrored/weights.npz")
    )
    print(f"mirrored, padded last batches, vs one device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE


@pytest.fixture(scope="module")
def batchnorm_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-batchnorm")
    return root, run_cases(root, BATCHNORM_CASES, "tensorflow")


@pytest.mark.slow
def test_mirrored_batchnorm_statistics_are_those_of_the_global_batch(batchnorm_results):
    """Each replica sees half of every batch; its BatchNorm layers normalise with both halves' statistics."""
    root, _ = batchnorm_results
    check_global_batchnorm(root / "mirrored_bn", root / "single_bn", TOLERANCE)
    difference = max_difference(
        weights(root / "single_bn/weights.npz"), weights(root / "mirrored_bn/weights.npz")
    )
    assert difference < TOLERANCE


def test_mirrored_checkpoint_loads_on_one_device(results):
    root, _ = results
    assert max_difference(weights(root / "mirrored/weights.npz"), weights(root / "load_mirrored.npz")) == 0.0


def test_batch_not_divisible_by_replicas(results):
    outcome = results[1]["bad_batch"]
    assert outcome["error"] == "ConfigError" and not outcome["wrote"]
    assert "train.batch_size = 31" in outcome["message"] and "multiple of 2" in outcome["message"]


def test_mirrored_without_gpus_is_refused(results):
    outcome = results[1]["no_gpus"]
    assert outcome["error"] == "ConfigError" and not outcome["wrote"]
    assert "0 GPU(s) found" in outcome["message"] and "nothing would run in parallel" in outcome["message"]


@pytest.fixture(scope="module")
def workers(results, tmp_path_factory):
    """`kplug train --nproc 2` with `auto` (2 workers), then its copy interrupted mid-epoch 2, resumed."""
    root, _ = results
    tmp_path = tmp_path_factory.mktemp("tf-workers")
    config = run_config(str(tmp_path / "two"), {"name": "auto"})
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(root / "blobs.npz")}}
    config["output"].update(CHECKPOINTS)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    scratch_before = set(Path(tempfile.gettempdir()).glob("kplug-rank*"))
    output = launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "tensorflow")
    resumed = interrupted_copy(tmp_path / "two", tmp_path / "resumed")
    resume_output = launch_cli(tmp_path, ["train", "--resume", str(resumed), "--nproc", "2"], "tensorflow")
    scratch_left = set(Path(tempfile.gettempdir()).glob("kplug-rank*")) - scratch_before
    return root, tmp_path, output, resume_output, scratch_left


@pytest.mark.slow
def test_two_workers_equal_one_device(workers):
    root, tmp_path, output, _, _ = workers
    placement = json.loads((tmp_path / "two" / "report.json").read_text())["distribution"]
    assert placement["strategy"] == "multi-worker-mirrored"  # auto, in a launched group
    assert placement["processes"] == 2 and placement["replicas"] == 2 and placement["rank"] == 0
    assert len(placement["workers"]) == 2 and set(placement["variables"].values()) == {"mirrored"}
    two = load_weights(tmp_path / "two" / "model.keras")  # loads on one device
    difference = max_difference(weights(root / "single_npz/weights.npz"), two)
    print(f"2 workers vs one device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    single = metrics_history(root / "single_npz" / "metrics.csv")
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):  # averaged over the workers
        assert metrics_history(tmp_path / "two" / "metrics.csv")[name] == pytest.approx(
            single[name], abs=TOLERANCE
        )


@pytest.mark.slow
def test_only_the_chief_writes_and_its_checkpoints_load_on_one_device(workers):
    _, tmp_path, output, resume_output, scratch_left = workers
    assert output.count("Run directory:") == 1 and resume_output.count("Run directory:") == 1
    assert not scratch_left  # worker 1 wrote to a scratch directory and removed it
    middle = tmp_path / "two" / "checkpoints" / MIDDLE / "model.keras"
    assert len(load_weights(middle)) == len(load_weights(tmp_path / "two" / "model.keras"))


@pytest.mark.slow
def test_resumed_two_workers_equal_the_uninterrupted_run(workers):
    _, tmp_path, _, resume_output, _ = workers
    assert "Resuming" in resume_output and "epoch 2" in resume_output
    difference = max_difference(
        load_weights(tmp_path / "two" / "model.keras"), load_weights(tmp_path / "resumed" / "model.keras")
    )
    print(f"2 workers resumed mid-epoch vs uninterrupted: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    resumed, uninterrupted = (metrics_history(tmp_path / run / "metrics.csv") for run in ("resumed", "two"))
    assert [row["epoch"] for row in read_metrics(tmp_path / "resumed" / "metrics.csv")] == [1, 2, 3]
    for name in ("val_loss", "val_accuracy"):  # the training metrics of epoch 2 cover its last batches only
        assert resumed[name] == pytest.approx(uninterrupted[name], abs=TOLERANCE)


@pytest.mark.slow
def test_two_workers_train_batchnorm_on_global_batch_statistics(batchnorm_results, tmp_path_factory):
    """`kplug train --nproc 2` of the BatchNorm CNN: each worker sees half of every batch."""
    root, _ = batchnorm_results
    tmp_path = tmp_path_factory.mktemp("tf-workers-batchnorm")
    config = run_config(str(tmp_path / "two"), {"name": "multi-worker-mirrored"}, batchnorm=True)
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(root / "images.npz")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "tensorflow")
    check_global_batchnorm(tmp_path / "two", root / "single_bn", TOLERANCE)
    two = load_weights(tmp_path / "two" / "model.keras")
    assert max_difference(weights(root / "single_bn/weights.npz"), two) < TOLERANCE


@pytest.mark.slow
def test_two_workers_pad_last_batches_that_do_not_split(results, tmp_path_factory):
    """Zero-weight padding of the last training and validation batches: the weights and the
    validation metrics of one device on the same batches."""
    root, found = results
    sizes = found["uneven_single"]["data"]
    assert sizes["train"] % 32 % 2 and sizes["validation"] % 32 % 2  # both last batches are padded
    tmp_path = tmp_path_factory.mktemp("tf-workers-uneven")
    config = run_config(str(tmp_path / "two"), {"name": "multi-worker-mirrored"})
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(root / "blobs.npz")}}
    config["data"]["limit"] = UNEVEN
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "tensorflow")
    difference = max_difference(
        weights(root / "uneven_single/weights.npz"), load_weights(tmp_path / "two" / "model.keras")
    )
    print(f"2 workers, padded last batch, vs one device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    single = metrics_history(root / "uneven_single" / "metrics.csv")
    two = metrics_history(tmp_path / "two" / "metrics.csv")
    report = json.loads((tmp_path / "two" / "report.json").read_text())
    assert "last batch of 13 padded to 14" in report["distribution"]["padded_last_batch"]["validation"]
    final, single_final = report["metrics"], found["uneven_single"]["metrics"]  # the end-of-run evaluation
    gaps = [
        abs(a - b)
        for name in ("val_loss", "val_accuracy")
        for a, b in zip(two[name], single[name], strict=True)
    ]
    gaps += [abs(final[name] - single_final[name]) for name in ("loss", "accuracy")]
    print(f"2 workers, padded last validation batch, vs one device: max metric difference {max(gaps):.3g}")
    for name in ("val_loss", "val_accuracy"):
        assert two[name] == pytest.approx(single[name], abs=TOLERANCE)
    assert final["split"] == "validation" and final == pytest.approx(single_final, abs=TOLERANCE)


def test_multi_worker_pads_a_last_batch_that_does_not_split_on_every_split():
    """The metric totals are summed over every worker's replicas, so zero-weight padding keeps them exact."""
    from kplug_distribute.tf_strategies import MultiWorkerMirrored

    workers = MultiWorkerMirrored.__new__(MultiWorkerMirrored)  # no cluster needed for the check
    workers.replicas = workers.processes = 2
    for split, rows in (("train", 183), ("validation", 45), ("test", 45)):
        workers.check_batches(split, rows, 32, "train.batch_size")  # accepted: the last batch is padded
        assert workers.batch_multiple(split) == 2


def test_multi_worker_outside_a_cluster_is_refused(tmp_path):
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    config = run_config(str(tmp_path / "alone"), {"name": "multi-worker-mirrored"})
    with pytest.raises(
        kplug.ConfigError, match="TF_CONFIG is not set, so this process is not one of a group"
    ):
        kplug.fit(config, plugins=plugins)
    assert not (tmp_path / "alone").exists()


def test_tf_config_gives_each_task_its_rank(monkeypatch):
    from kplug.testing import tf_config

    from kplug_distribute.tf_strategies import read_tf_config

    monkeypatch.setenv("TF_CONFIG", tf_config([2001, 2002, 2003], 2))  # what `--nproc 3` sets
    assert read_tf_config() == (["127.0.0.1:2001", "127.0.0.1:2002", "127.0.0.1:2003"], 2)
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert read_tf_config() == (["a:1", "b:1", "c:1"], 1)  # the chief is rank 0
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "ps", "index": 0}}))
    with pytest.raises(kplug.ConfigError, match="TF_CONFIG=.*one of the cluster's chief or worker tasks"):
        read_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    assert read_tf_config() is None
