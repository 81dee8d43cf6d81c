"""`srun kplug train run.yaml`: two processes given only the variables srun sets train one run.

No SLURM here: the test starts the two tasks itself, each with ``SLURM_PROCID``, ``SLURM_NTASKS``,
``SLURM_LOCALID``, ``SLURM_JOB_NODELIST``, ``SLURM_TASKS_PER_NODE`` and ``SLURM_JOB_ID`` as srun
sets them on one node (``localhost``), plus ``MASTER_PORT`` (free ports here; on a cluster kplug
derives it from the job id). ``distribution: auto`` picks each backend's multi-process strategy
(data-parallel, multi-worker-mirrored, ddp) and the weights equal the one-device run on the same
global batches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import kplug
import numpy as np
import pytest
import yaml
from case import blobs, run_config
from conftest import REPO, load_weights, max_difference
from kplug.testing import free_port_block

import kplug_distribute

BACKEND = keras.backend.backend()
TOLERANCE = 1e-5  # as the --nproc tests of every backend; float32 sums in another order
SLURM_VARIABLES = ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_NODELIST", "SLURM_JOB_ID")
STRATEGY = {"jax": "data-parallel", "tensorflow": "multi-worker-mirrored", "torch": "ddp"}


def srun_environment(rank: int, port: int) -> dict[str, str]:
    """The environment of task ``rank`` of ``srun --ntasks 2`` on one node, and nothing of torchrun's."""
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "KPLUG_LOAD_PLUGINS": "distribute"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "TF_CONFIG", "XLA_FLAGS"):
        env.pop(name, None)
    return {
        **env,
        "SLURM_PROCID": str(rank),
        "SLURM_LOCALID": str(rank),
        "SLURM_NTASKS": "2",
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_TASKS_PER_NODE": "2",
        "SLURM_JOB_ID": "4242",
        "MASTER_PORT": str(port),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run by two srun-style tasks and by one device in this process."""
    tmp_path = tmp_path_factory.mktemp("slurm")
    x, y = blobs()
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = run_config(str(tmp_path / "two"), {"name": "auto"})
    config["data"] = {**config["data"], "source": "npz", "options": {"path": str(tmp_path / "blobs.npz")}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    port = free_port_block(4)
    command = [
        sys.executable,
        "-c",
        "from kplug.cli.main import entry_point; entry_point()",
        "train",
        "run.yaml",
    ]
    tasks = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=srun_environment(rank, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    single = kplug.fit(run_config(str(tmp_path / "single"), {"name": "single-device"}), plugins=plugins)
    outputs = []
    for task in tasks:
        output, _ = task.communicate(timeout=600)
        outputs.append(output)
        assert task.returncode == 0, output[-4000:]
    return tmp_path, single, outputs


@pytest.mark.slow
def test_two_srun_tasks_train_one_run_equal_to_one_device(runs):
    tmp_path, single, outputs = runs
    placement = json.loads((tmp_path / "two" / "report.json").read_text())["distribution"]
    assert placement["strategy"] == STRATEGY[BACKEND] and placement["processes"] == 2
    difference = max_difference(single.model.get_weights(), load_weights(tmp_path / "two" / "model.keras"))
    print(f"2 SLURM tasks ({BACKEND}) vs one device: max weight difference {difference:.3g}")
    assert difference < TOLERANCE
    assert sum(output.count("Run directory:") for output in outputs) == 1  # rank 0 reports
