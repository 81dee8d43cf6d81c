"""torch DistributedDataParallel: `kplug train --nproc 2` (2 gloo processes) against one process.

The reference is the same config trained by one process of a group of one
(WORLD_SIZE=1), which reads the same global batches in the same order; with
gradients synchronised the two processes, each on half of every batch, must end
with the same weights and the same (averaged) training metrics.
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
import yaml
from case import BATCHNORM_CNN, blobs, images
from conftest import (
    CHECKPOINTS,
    REPO,
    check_global_batchnorm,
    interrupted_copy,
    launch_cli,
    load_weights,
    max_difference,
)

import kplug_distribute

pytestmark = pytest.mark.backends("torch")

TOLERANCE = 1e-5  # float32 sums in another order; measured 1.2e-7 here


def _config(tmp_path, output, distribution="ddp", batchnorm=False):
    """The MLP run on ``blobs``, or with ``batchnorm`` the BatchNorm CNN on the same problem as images."""
    x, y = images() if batchnorm else blobs()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    backbone = BATCHNORM_CNN if batchnorm else {"name": "mlp", "options": {"units": [16, 8]}}
    return {
        "name": "ddp",
        "seed": 5,
        "data": {
            "source": "npz",
            "options": {"path": str(tmp_path / "data.npz")},
            "split": {"validation": 0.2},
        },
        "model": {"backbone": backbone, "heads": [{"name": "classification"}]},
        "train": {
            "epochs": 3,
            "batch_size": 32,
            "verbose": 0,
            "optimizer": {"name": "sgd", "learning_rate": 0.1},
        },
        "distribution": {"name": distribution},
        "output": {"dir": str(output), **CHECKPOINTS},
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _metrics(run_dir):
    with open(run_dir / "metrics.csv") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run by 2 launched processes and by a group of one (this process)."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(_config(tmp_path, tmp_path / "two")))
    env = {**os.environ, "KERAS_BACKEND": "torch", "KPLUG_LOAD_PLUGINS": "distribute"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    scratch_before = set(Path(tempfile.gettempdir()).glob("kplug-rank*"))
    launched = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kplug.cli.main import entry_point; entry_point()",
            "train",
            "run.yaml",
            "--nproc",
            "2",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    group_of_one = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    previous = {name: os.environ.get(name) for name in [*group_of_one, "MASTER_PORT"]}
    os.environ.update(group_of_one, MASTER_PORT=str(_free_port()))
    try:
        plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
        one = kplug.fit(_config(tmp_path, tmp_path / "one"), plugins=plugins)
    finally:
        for name, value in previous.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
    single = kplug.fit(_config(tmp_path, tmp_path / "single", "single-device"), plugins=plugins)
    output, _ = launched.communicate(timeout=600)
    assert launched.returncode == 0, output[-4000:]
    scratch_left = set(Path(tempfile.gettempdir()).glob("kplug-rank*")) - scratch_before
    return tmp_path, one, output, scratch_left, single


@pytest.mark.slow
def test_two_processes_equal_one(runs):
    tmp_path, one, _, _, single = runs
    two = keras.saving.load_model(tmp_path / "two" / "model.keras", compile=False)  # loads on one device
    assert max_difference(one.model.get_weights(), two.get_weights()) < TOLERANCE
    difference = max_difference(single.model.get_weights(), two.get_weights())
    print(f"2 ddp processes vs single-device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE  # every strategy reads kplug's batch stream in the same order


@pytest.mark.slow
def test_metrics_are_averaged_over_processes(runs):
    tmp_path, one, _, _, _ = runs
    for a, b in zip(_metrics(one.run_dir), _metrics(tmp_path / "two"), strict=True):
        assert a == pytest.approx(b, abs=TOLERANCE)


@pytest.mark.slow
def test_report_names_the_group_and_only_rank_0_writes(runs):
    tmp_path, one, output, scratch_left, _ = runs
    report = yaml.safe_load((tmp_path / "two" / "report.json").read_text())
    assert report["distribution"]["strategy"] == "ddp"
    assert report["distribution"]["processes"] == 2 and report["distribution"]["backend"] == "gloo"
    assert one.report["distribution"]["processes"] == 1
    assert output.count("Run directory:") == 1
    assert not scratch_left  # rank 1 wrote to a scratch directory and removed it


@pytest.mark.slow
def test_resumed_two_processes_equal_the_uninterrupted_run(runs):
    """The 2-process run interrupted in the middle of epoch 2, resumed by `kplug train --resume --nproc 2`."""
    tmp_path, _, _, _, _ = runs
    resumed = interrupted_copy(tmp_path / "two", tmp_path / "resumed")
    output = launch_cli(tmp_path, ["train", "--resume", str(resumed), "--nproc", "2"], "torch")
    assert "Resuming" in output and "epoch 2" in output and output.count("Run directory:") == 1
    difference = max_difference(
        load_weights(tmp_path / "two" / "model.keras"), load_weights(resumed / "model.keras")
    )
    print(f"2 processes resumed mid-epoch vs uninterrupted: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    assert [row["epoch"] for row in _metrics(resumed)] == [1, 2, 3]
    for a, b in zip(_metrics(tmp_path / "two"), _metrics(resumed), strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=TOLERANCE)


@pytest.fixture(scope="module")
def batchnorm_runs(tmp_path_factory):
    """The BatchNorm CNN trained by 2 launched processes and by one device, on the same global batches."""
    tmp_path = tmp_path_factory.mktemp("ddp-batchnorm")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(_config(tmp_path, tmp_path / "two", batchnorm=True)))
    launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "torch")
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    kplug.fit(_config(tmp_path, tmp_path / "single", "single-device", batchnorm=True), plugins=plugins)
    return tmp_path


@pytest.mark.slow
def test_batchnorm_statistics_are_those_of_the_global_batch(batchnorm_runs):
    """Each process sees half of every batch; its BatchNorm layers normalise with both halves' statistics."""
    tmp_path = batchnorm_runs
    check_global_batchnorm(tmp_path / "two", tmp_path / "single", TOLERANCE)
    difference = max_difference(
        load_weights(tmp_path / "single" / "model.keras"), load_weights(tmp_path / "two" / "model.keras")
    )
    print(f"BatchNorm CNN, 2 ddp processes vs single-device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE


@pytest.mark.slow
def test_two_processes_pad_a_last_batch_that_does_not_split(tmp_path, plugins):
    """181 training rows: the last batch (21) gets a zero-weight row so each process takes 11;
    the weights are those of one device on the same batches."""
    config = _config(tmp_path, tmp_path / "two")
    config["data"]["limit"] = 226
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    launch_cli(tmp_path, ["train", "run.yaml", "--nproc", "2"], "torch")
    single = kplug.fit(
        {**config, "distribution": {"name": "single-device"}, "output": {"dir": str(tmp_path / "one")}},
        plugins=plugins,
    )
    assert single.report["data"]["train"] % 32 % 2
    difference = max_difference(single.model.get_weights(), load_weights(tmp_path / "two" / "model.keras"))
    print(f"2 ddp processes, padded last batch, vs single-device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    for a, b in zip(_metrics(tmp_path / "one"), _metrics(tmp_path / "two"), strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=TOLERANCE)  # run whole in each process


def test_ddp_pads_training_batches_only():
    from kplug_distribute.torch_ddp import DistributedDataParallel

    ddp = DistributedDataParallel.__new__(DistributedDataParallel)  # no process group needed
    ddp.replicas = ddp.processes = 2
    assert ddp.batch_multiple("train") == 2
    assert ddp.batch_multiple("validation") == ddp.batch_multiple("test") == 1  # run whole in each process


def test_ddp_outside_a_launched_group_is_refused(tmp_path, plugins):
    with pytest.raises(kplug.ConfigError, match="not launched as one of a group"):
        kplug.fit(_config(tmp_path, tmp_path / "alone"), plugins=plugins)
    assert not (tmp_path / "alone").exists()


@pytest.fixture
def plugins():
    return kplug.load_plugins([kplug_distribute], entry_points=False)
