"""Process groups: how many processes train together, which one this is, and starting them.

``kplug train --nproc N`` (``launch``), torchrun and SLURM start N processes
with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set; a multi-process
distribution reads them here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras

from kplug.backend.tf_config import tf_config
from kplug.errors import ConfigError

if TYPE_CHECKING:
    from kplug.plugin.distribution import Distribution


def world_size() -> int:
    """Processes this run was started in (``WORLD_SIZE``; 1 when not launched as a group)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={value!r}: expected a positive whole number of processes.") from None
    if size < 1:
        raise ConfigError(f"WORLD_SIZE={value!r}: expected a positive whole number of processes.")
    return size


def process_rank() -> int:
    """This process's rank in its group (``RANK``; 0 when not launched as a group)."""
    return int(os.environ.get("RANK", "0"))


def check_process_group(distribution: Distribution) -> None:
    """Refuse to run one independent copy per process when several were launched.

    ``kplug train --nproc N`` and torchrun start N processes; a distribution that
    trains in one process would then train N unrelated models while the user
    believes they train one in parallel.
    """
    size = world_size()
    if size > 1 and distribution.processes != size:
        raise ConfigError(
            f"distribution.name = '{distribution.name}': this process is one of WORLD_SIZE={size} "
            f"launched together, but '{distribution.name}' trains in {distribution.processes} "
            f"process(es), so each process would train its own model. Use a multi-process distribution "
            f"(see `kplug plugins`), or start a single process."
        )


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together while chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def launch(argv: Sequence[str], nproc: int, port: int | None = None) -> int:
    """Run ``kplug`` with ``argv`` in ``nproc`` processes on this host, torchrun-style.

    Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT``, and on the tensorflow backend its ``TF_CONFIG`` (see ``tf_config``).
    When one process fails the others are stopped.

    Returns:
        0 when every process succeeded, else the first non-zero exit code.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: expected 1 or more processes.")
    if world_size() > 1:
        raise ConfigError("--nproc: this process is already one of a launched group (WORLD_SIZE is set).")
    # tf.distribute.MultiWorkerMirroredStrategy reads its cluster from TF_CONFIG: one port per process
    workers = nproc if keras.backend.backend() == "tensorflow" else 0
    worker_ports = free_ports((port is None) + workers)
    if port is None:
        port = worker_ports.pop(0)
    children = []
    for rank in range(nproc):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        if worker_ports:
            env["TF_CONFIG"] = tf_config(worker_ports, rank)
        command = [sys.executable, "-c", "from kplug.cli.main import entry_point; entry_point()", *argv]
        children.append(subprocess.Popen(command, env=env))
    codes: dict[int, int] = {}
    try:
        while len(codes) < nproc:
            for rank, child in enumerate(children):
                code = child.poll()
                if code is not None and rank not in codes:
                    codes[rank] = code
                    if code != 0:
                        for other in children:
                            if other.poll() is None:
                                other.terminate()
            time.sleep(0.2)
    except KeyboardInterrupt:
        for child in children:
            if child.poll() is None:
                child.terminate()
        raise
    failed = [codes[rank] for rank in sorted(codes) if codes[rank] != 0]
    return failed[0] if failed else 0
