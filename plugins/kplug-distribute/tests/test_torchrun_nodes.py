"""Two torchrun "nodes" on this host train one run, and a killed node resumes with the group.

Each node is its own ``torchrun --nnodes 2 --nproc-per-node 1 --node-rank R --rdzv-backend c10d
--rdzv-endpoint 127.0.0.1:PORT -m kplug train run.yaml``, as on two machines: its worker knows only
torchrun's variables (no host list), so on TensorFlow and JAX the workers exchange their
addresses through torchrun's store (``TF_CONFIG``; JAX's coordinator). ``distribution: auto``
picks each backend's multi-process strategy and the weights equal the one-device run on the same
global batches. Then node 1's worker is killed mid-epoch after a checkpoint, and both nodes
relaunched with ``kplug train --resume`` end with the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
import yaml
from case import blobs, run_config
from conftest import CHECKPOINTS, REPO, load_weights, max_difference
from kplug.testing import free_port_block

import kplug_distribute

BACKEND = keras.backend.backend()
TOLERANCE = 1e-5  # as the --nproc and SLURM tests of every backend; float32 sums in another order
STRATEGY = {"jax": "data-parallel", "tensorflow": "multi-worker-mirrored", "torch": "ddp"}
TIMEOUT = 600
DRIVER = REPO / "tests" / "kill_driver.py"  # `kplug`, stopping dead at a chosen batch
PAUSE_AFTER = 9  # node 1's worker stops after its 9th batch (of 6 per epoch): 3 into epoch 2
LAST_CHECKPOINT = "epoch00001-batch000002-stage01"  # rank 0 writes it after batch 8
NEXT_CHECKPOINT = "epoch00001-batch000004-stage01"  # needs batch 10, which node 1 never takes
GROUP_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
KERAS_JAX_VARIABLES = tuple(
    f"KERAS_DISTRIBUTION_{n}" for n in ("JOB_ADDRESSES", "NUM_PROCESSES", "PROCESS_ID")
)


def node_environment(**extra: str) -> dict[str, str]:
    """A node's environment: the backend, kplug-distribute, and nothing of a group's variables."""
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "KPLUG_LOAD_PLUGINS": "distribute", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    for name in (*GROUP_VARIABLES, *KERAS_JAX_VARIABLES, "TF_CONFIG", "XLA_FLAGS", "KPLUG_TEST_PAUSE"):
        if name not in extra:
            env.pop(name, None)
    return env


@dataclass
class Node:
    """One torchrun "node": its process and the file its output goes to."""

    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def finish(self, timeout: float = TIMEOUT) -> str:
        """Wait for the node to exit (killing it after ``timeout``); its output."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"a node did not finish within {timeout} s:\n{self.output()[-4000:]}"
            ) from None
        return self.output()


def start_node(cwd: Path, rank: int, port: int, program: list[str], **env: str) -> Node:
    """``torchrun --nnodes 2 --nproc-per-node 1 --node-rank RANK ... PROGRAM``, logging to ``cwd``."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",  # what the torchrun script runs
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--node-rank",
        str(rank),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        *program,
    ]
    log = cwd / f"node{rank}-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=node_environment(**env), stdout=out, stderr=subprocess.STDOUT
        )
    return Node(process, log)


def start_nodes(cwd: Path, program0: list[str], program1: list[str], **env1: str) -> list[Node]:
    """Node 0 runs ``program0`` and node 1 ``program1`` (with ``env1`` added), at one rendezvous."""
    port = free_port_block(1)
    return [start_node(cwd, 0, port, program0), start_node(cwd, 1, port, program1, **env1)]


def run_nodes(cwd: Path, argv: list[str]) -> tuple[list[str], float, float]:
    """Both nodes run ``kplug ARGV`` to the end; their outputs, the wall and CPU seconds taken."""
    cpu, wall = _children_cpu(), time.monotonic()
    nodes = start_nodes(cwd, ["-m", "kplug", *argv], ["-m", "kplug", *argv])
    outputs = [node.finish() for node in nodes]
    for node, output in zip(nodes, outputs, strict=True):
        assert node.process.returncode == 0, output[-4000:]
    return outputs, time.monotonic() - wall, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until(condition: Callable[[], bool], nodes: list[Node], what: str) -> None:
    """Return once ``condition()`` holds; fail if a node exits first or ``TIMEOUT`` passes."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        ended = [node for node in nodes if node.process.poll() is not None]
        assert not ended and time.monotonic() < deadline, f"waiting for {what}:\n" + "\n".join(
            node.output()[-3000:] for node in nodes
        )
        time.sleep(0.05)  # polling a file, not guessing a duration


def worker_of(node: Node) -> int:
    """The process id of the worker a torchrun node started (its only child running Python)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == node.process.pid:
            children.append(int(stat.parent.name))
    assert len(children) == 1, children
    return children[0]


def kill_node_mid_run(cwd: Path, output: str) -> dict[str, object]:
    """Node 1's worker stops dead after batch 9 and is killed; both nodes then resume the run."""
    marker = cwd / "paused"
    pause = json.dumps({"kind": "batch", "after": PAUSE_AFTER, "marker": str(marker)})
    argv = ["train", "run.yaml", "--output", output]
    nodes = start_nodes(cwd, ["-m", "kplug", *argv], [str(DRIVER), *argv], KPLUG_TEST_PAUSE=pause)
    checkpoints = cwd / output / "checkpoints"
    wait_until(lambda: marker.exists() and (checkpoints / LAST_CHECKPOINT).is_dir(), nodes, LAST_CHECKPOINT)
    os.kill(worker_of(nodes[1]), signal.SIGKILL)
    killed = nodes[1].finish()
    assert nodes[1].process.returncode != 0, killed[-3000:]
    try:  # torch's gloo sees the peer gone and fails; TF's and JAX's collectives may wait on it
        nodes[0].process.wait(timeout=30)
        survivor = "exited"
    except subprocess.TimeoutExpired:
        nodes[0].process.terminate()  # as a scheduler cancels a job whose node died
        survivor = "terminated"
    nodes[0].finish()
    left = sorted(path.name for path in checkpoints.iterdir())
    outputs, wall, cpu = run_nodes(cwd, ["train", "--resume", output])
    return {"left": left, "survivor": survivor, "outputs": outputs, "wall": wall, "cpu": cpu}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    """The run on one device in this process, and on two torchrun nodes: killed mid-run, then resumed.

    One two-node run per backend (the end-to-end cases are the slowest in the suite): weights equal
    to the single device after the kill and resume check the group's training before and after it.
    """
    tmp_path = tmp_path_factory.mktemp("nodes")
    x, y = blobs()
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = run_config("two", {"name": "auto"})
    config["output"].update(CHECKPOINTS)
    config["data"] = {**config["data"], "source": "npz", "options": {"path": "blobs.npz"}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    plugins = kplug.load_plugins([kplug_distribute], entry_points=False)
    single = kplug.fit(run_config(str(tmp_path / "single"), {"name": "single-device"}), plugins=plugins)
    killed = kill_node_mid_run(tmp_path, "killed")
    print(
        f"killed node resumed ({BACKEND}): {killed['wall']:.1f} s wall, {killed['cpu']:.1f} CPU s; "
        f"the surviving node {killed['survivor']}"
    )
    return tmp_path, single, killed


@pytest.mark.slow
def test_two_torchrun_nodes_train_one_run_equal_to_one_device(nodes):
    tmp_path, single, killed = nodes
    placement = json.loads((tmp_path / "killed" / "report.json").read_text())["distribution"]
    assert placement["strategy"] == STRATEGY[BACKEND] and placement["processes"] == 2
    difference = max_difference(single.model.get_weights(), load_weights(tmp_path / "killed" / "model.keras"))
    print(
        f"2 torchrun nodes ({BACKEND}), killed and resumed, vs one device: "
        f"max weight difference {difference:.3g}"
    )
    assert difference < TOLERANCE
    assert sum(output.count("Run directory:") for output in killed["outputs"]) == 1  # rank 0 reports


@pytest.mark.slow
def test_a_killed_node_resumes_with_the_group_from_the_last_checkpoint(nodes):
    _, _, killed = nodes
    assert LAST_CHECKPOINT in killed["left"] and NEXT_CHECKPOINT not in killed["left"], killed["left"]
    assert "Resuming" in "".join(killed["outputs"]), "".join(killed["outputs"])[-3000:]
