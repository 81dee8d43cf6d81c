"""Process groups: how many processes train together, which one this is, and starting them.

``kplug train --nproc N`` (``launch``, torchrun's engine) and torchrun start N processes
with ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set, and under SLURM kplug sets them from
SLURM's variables (``kplug.distribute.process_group``); a multi-process distribution reads them here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kplug.distribute.process_group import TF_PORT_OFFSET
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


def free_port_block(count: int, attempts: int = 20) -> int:
    """The first of ``count`` consecutive TCP ports free on 127.0.0.1 right now.

    A group uses the coordinator's port and the ones after it (``kplug.distribute.process_group``).
    """
    for _ in range(attempts):
        probes = [socket.socket()]
        try:
            probes[0].bind(("127.0.0.1", 0))
            first = probes[0].getsockname()[1]
            if first + count > 65536:
                continue
            for port in range(first + 1, first + count):
                probes.append(socket.socket())
                probes[-1].bind(("127.0.0.1", port))
            return first
        except OSError:
            continue  # one of the following ports is taken: try another block
        finally:
            for probe in probes:
                probe.close()
    raise ConfigError(f"--nproc: found no {count} consecutive free TCP ports on 127.0.0.1.")


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run ``kplug`` with ``argv`` in ``nproc`` processes on this host, with torchrun's engine.

    ``torch.distributed.run`` (what ``torchrun`` runs) starts the processes with ``RANK``,
    ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` (127.0.0.1) and ``MASTER_PORT``, and
    stops the others when one fails; each process derives what its backend needs from them
    (``kplug.distribute.process_group``: the JAX coordinator, ``TF_CONFIG``). It needs torch
    installed, whatever the backend.

    Returns:
        0 when every process succeeded, else the exit code of the first that failed.
    """
    from kplug.backend.torchrun import run_torchrun

    if nproc < 1:
        raise ConfigError(f"--nproc {nproc}: expected 1 or more processes.")
    if world_size() > 1:
        raise ConfigError("--nproc: this process is already one of a launched group (WORLD_SIZE is set).")
    port = free_port_block(TF_PORT_OFFSET + nproc)  # torch's store, JAX's coordinator, one per TF worker
    arguments = [
        "--nnodes=1",
        f"--nproc-per-node={nproc}",
        "--master-addr=127.0.0.1",
        f"--master-port={port}",
        "--module",
        "kplug.cli.main",
        *argv,
    ]
    return run_torchrun(arguments)
