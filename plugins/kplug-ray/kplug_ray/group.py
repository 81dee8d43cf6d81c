"""Start the run's group of training processes as Ray actors, and wait for it.

Each actor gets torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``, and ``TF_CONFIG`` on TensorFlow), so
kplug trains in it exactly as in a process torchrun started: DDP over gloo/nccl on torch,
``jax.distributed`` on JAX (coordinator on ``MASTER_PORT + 1``), MultiWorkerMirroredStrategy on
TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kplug_ray.options import RayOptions
from kplug_ray.worker import Worker

# Tells the ``ray`` distribution and report hook that this process is a worker of a Ray group.
CLUSTER_VARIABLE = "KPLUG_RAY_CLUSTER"
JAX_PORT_OFFSET = 1  # kplug's JAX coordinator listens on MASTER_PORT + 1
LOST = "the worker's process died"
LOST_PEER_SECONDS = 30  # how long the other workers get to report after one failed


@dataclass
class Placement:
    """One worker: its actor, rank and where it runs."""

    actor: Any
    node: str
    pid: int
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1

    def describe(self) -> dict[str, Any]:
        """What ``report.json`` records of this worker."""
        return {"rank": self.rank, "node": self.node, "local_rank": self.local_rank, "pid": self.pid}


def passed_environment() -> dict[str, str]:
    """The driver's variables every worker sees too: ``KERAS_BACKEND`` and ``KPLUG_*``."""
    return {k: v for k, v in os.environ.items() if k == "KERAS_BACKEND" or k.startswith("KPLUG_")}


def place_workers(ray: Any, options: RayOptions) -> list[Placement]:
    """Start one actor per worker and give them ranks, node by node (local ranks count up per node)."""
    remote = ray.remote(Worker).options(
        num_cpus=options.cpus_per_worker,
        num_gpus=options.gpus_per_worker,
        max_restarts=0,
        runtime_env={"env_vars": passed_environment()},
    )
    actors = [remote.remote() for _ in range(options.workers)]
    found = ray.get([actor.node.remote() for actor in actors])
    nodes = list(dict.fromkeys(where["node"] for where in found))  # in order of first appearance
    placements = [
        Placement(actor, where["node"], where["pid"]) for actor, where in zip(actors, found, strict=True)
    ]
    placements.sort(key=lambda placement: nodes.index(placement.node))
    for rank, placement in enumerate(placements):
        on_node = [other for other in placements if other.node == placement.node]
        placement.rank = rank
        placement.local_rank = on_node.index(placement)
        placement.local_world_size = len(on_node)
    return placements


def environments(
    ray: Any, placements: list[Placement], address: str, restarts: int = 0
) -> list[dict[str, str]]:
    """Every worker's torchrun variables, ``TF_CONFIG`` and ``KPLUG_RAY_CLUSTER``, in rank order.

    ``KPLUG_RAY_CLUSTER`` is what ``report.json`` records under ``ray``: the cluster's address,
    every worker (rank, node, local rank, pid) and how often the group was started again.
    """
    chief = placements[0]
    port = ray.get(chief.actor.free_ports.remote(JAX_PORT_OFFSET + 1))  # torch's store, JAX's coordinator
    tf_ports = ray.get([placement.actor.free_ports.remote(1) for placement in placements])
    tf_workers = [
        f"{placement.node}:{tf_port}" for placement, tf_port in zip(placements, tf_ports, strict=True)
    ]
    workers = [placement.describe() for placement in placements]
    cluster = json.dumps({"address": address, "workers": workers, "restarts": restarts})
    return [
        {
            "RANK": str(placement.rank),
            "WORLD_SIZE": str(len(placements)),
            "LOCAL_RANK": str(placement.local_rank),
            "LOCAL_WORLD_SIZE": str(placement.local_world_size),
            "MASTER_ADDR": chief.node,
            "MASTER_PORT": str(port),
            "KPLUG_PROCESS_ENGINE": "ray",
            "TF_CONFIG": json.dumps(
                {"cluster": {"worker": tf_workers}, "task": {"type": "worker", "index": placement.rank}}
            ),
            CLUSTER_VARIABLE: cluster,
        }
        for placement in placements
    ]


def run_group(
    ray: Any, options: RayOptions, train: dict[str, Any], address: str, restarts: int = 0
) -> str | None:
    """Train the run once in a group of ``options.workers`` actors (``restarts``: groups started before).

    Returns:
        ``None`` when every worker finished, else what went wrong, the workers whose process died
        first (the other workers are stopped then: they would wait for the lost one forever).
    """
    placements = place_workers(ray, options)
    for placement in placements:
        print(f"kplug-ray: worker {placement.rank} on {placement.node} (pid {placement.pid})", flush=True)
    calls = {
        placement.actor.train.remote(environment, os.getcwd(), train): placement
        for placement, environment in zip(
            placements, environments(ray, placements, address, restarts), strict=True
        )
    }
    pending = list(calls)
    failures: list[str] = []
    while pending and not failures:
        done, pending = ray.wait(pending, num_returns=1)
        failures += _failures(ray, done, calls)
    if failures and pending:  # the lost worker's peers fail too: name the worker that died first
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=LOST_PEER_SECONDS)
        failures += _failures(ray, done, calls)
    failures.sort(key=lambda failure: LOST not in failure)
    for placement in placements:
        ray.kill(placement.actor)
    return "; ".join(failures) or None


def _failures(ray: Any, done: list[Any], calls: dict[Any, Placement]) -> list[str]:
    """What went wrong in the finished ``train`` calls ``done``, one line per failed worker."""
    failures = []
    for call in done:
        try:
            error = ray.get(call)
        except ray.exceptions.RayActorError as lost:
            error = f"{LOST} ({type(lost).__name__}: {str(lost).splitlines()[0]})"
        except ray.exceptions.RayError as raised:
            error = f"{type(raised).__name__}: {str(raised).splitlines()[0]}"
        if error is not None:
            failures.append(f"worker {calls[call].rank}: {error}")
    return failures
