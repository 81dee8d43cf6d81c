"""The process group this process was started in, read from its launcher's environment.

Two engines start the processes of one run, and each says who is who in its own variables:

- **torchrun** (and ``kplug train --nproc N``, which runs torchrun's engine): ``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``.
- **SLURM** (``srun``): ``SLURM_PROCID``, ``SLURM_NTASKS`` (``SLURM_STEP_NUM_TASKS``),
  ``SLURM_LOCALID``, ``SLURM_STEP_NODELIST`` or ``SLURM_JOB_NODELIST`` (compressed, e.g.
  ``node[01-03,07]``) and ``SLURM_STEP_TASKS_PER_NODE`` or ``SLURM_TASKS_PER_NODE`` (e.g.
  ``2(x3),1``). The coordinator is the first host of the node list (``MASTER_ADDR`` overrides it),
  its port ``MASTER_PORT``, or else ``10000 + SLURM_JOB_ID % 20000`` (the same in every task).

torchrun's variables win when both are set (``srun torchrun ...``). ``join_process_group``
exports torchrun's variables from SLURM's, so every backend's distribution reads one set.

Ports, counted from the coordinator's port P: P is torch.distributed's store (torchrun's agent
holds it), P+1 the JAX coordinator, P+2+i the TensorFlow worker of local rank i. That needs every
process's host, which a multi-node torchrun group (``c10d`` rendezvous) does not say: there each
process publishes a free ``host:port`` of its own in torchrun's store and reads the others'
(``kplug.backend.torch_store``); TensorFlow's workers and JAX's coordinator (rank 0's) use those.

This module imports no Keras and no backend library (``kplug doctor`` uses it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

from kplug.backend.tf_config import cluster_tf_config
from kplug.errors import ConfigError

JAX_PORT_OFFSET = 1
TF_PORT_OFFSET = 2
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class ProcessGroup:
    """Who this process is in the group of processes that train one run together.

    Attributes:
        engine: what started the group: ``torchrun``, ``slurm`` or ``none`` (one process).
        rank: this process's index in the group (0 writes the run directory).
        world_size: how many processes train together.
        local_rank: this process's index on its host.
        host: the coordinator's host (rank 0's), or ``None`` when not in a group.
        port: the coordinator's port (see the module docstring for the ports after it).
        hosts: the host of every process, in rank order, when the engine says (else empty).
    """

    engine: str = "none"
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    host: str | None = None
    port: int | None = None
    hosts: tuple[str, ...] = field(default=(), repr=False)

    @property
    def coordinator(self) -> str | None:
        """``host:port`` of the coordinator (torch.distributed's store), or ``None``."""
        return f"{self.host}:{self.port}" if self.host and self.port else None

    def address(self, offset: int) -> str | None:
        """``host:port + offset`` on the coordinator's host (e.g. ``JAX_PORT_OFFSET``), or ``None``."""
        return f"{self.host}:{self.port + offset}" if self.host and self.port else None

    @property
    def jax_coordinator(self) -> str | None:
        """``host:port`` of the JAX coordinator (the port after torch.distributed's), or ``None``."""
        return self.address(JAX_PORT_OFFSET)

    def tf_workers(self) -> list[str] | None:
        """Every process's TensorFlow worker address in rank order, or ``None`` when the hosts are unknown."""
        if not self.hosts or not self.port:
            return None
        workers, seen = [], {}
        for host in self.hosts:
            local = seen.get(host, 0)
            seen[host] = local + 1
            workers.append(f"{host}:{self.port + TF_PORT_OFFSET + local}")
        return workers

    def describe(self) -> dict[str, Any]:
        """What ``kplug doctor`` shows."""
        shown = {k: v for k, v in asdict(self).items() if k not in ("host", "port", "hosts")}
        return {**shown, "coordinator": self.coordinator}


def expand_nodelist(nodelist: str) -> list[str]:
    """SLURM's compressed host list as host names, in order.

    Example::

        expand_nodelist("node[01-03,07],gpu5")  # ['node01', 'node02', 'node03', 'node07', 'gpu5']
    """
    hosts: list[str] = []
    for name in re.findall(r"(?:[^,\[]|\[[^\]]*\])+", nodelist):  # commas outside brackets split hosts
        pieces = re.split(r"\[([^\]]*)\]", name)  # text, ranges, text, ranges, ..., text
        expanded = [""]
        for index, piece in enumerate(pieces):
            items = _expand_ranges(piece, nodelist) if index % 2 else [piece]
            expanded = [prefix + item for prefix in expanded for item in items]
        hosts += [host.strip() for host in expanded if host.strip()]
    return hosts


def _expand_ranges(ranges: str, nodelist: str) -> list[str]:
    items = []
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ConfigError(
                f"SLURM_JOB_NODELIST={nodelist!r}: cannot read {part!r}; expected ranges like node[01-03,07]."
            )
        width = len(low)
        items += [str(n).zfill(width) for n in range(int(low), int(high or low) + 1)]
    return items


def expand_tasks_per_node(value: str) -> list[int]:
    """SLURM's tasks per node (``2(x3),1``) as one count per node (``[2, 2, 2, 1]``)."""
    counts = []
    for part in value.split(","):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
        if not match:
            raise ConfigError(f"SLURM_TASKS_PER_NODE={value!r}: expected counts like 2(x3),1.")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def _integer(environ: Mapping[str, str], name: str, default: str | None = None) -> int:
    value = environ.get(name, default)
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a whole number.") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r}: expected a whole number of 0 or more.")
    return number


def _torchrun(environ: Mapping[str, str]) -> ProcessGroup:
    size = _integer(environ, "WORLD_SIZE")
    local_size = _integer(environ, "LOCAL_WORLD_SIZE", str(size))
    host = environ.get("MASTER_ADDR") or None
    port = _integer(environ, "MASTER_PORT") if environ.get("MASTER_PORT") else None
    single_host = local_size == size and host is not None
    return ProcessGroup(
        engine=environ.get("KPLUG_PROCESS_ENGINE", "torchrun"),
        rank=_integer(environ, "RANK", "0"),
        world_size=size,
        local_rank=_integer(environ, "LOCAL_RANK", "0"),
        host=host,
        port=port,
        hosts=(host,) * size if single_host else (),
    )


def _slurm(environ: Mapping[str, str]) -> ProcessGroup:
    size = _integer(environ, "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in environ else "SLURM_NTASKS")
    name = "SLURM_STEP_NODELIST" if environ.get("SLURM_STEP_NODELIST") else "SLURM_JOB_NODELIST"
    nodes = expand_nodelist(environ.get(name, ""))
    if not nodes:
        raise ConfigError(
            f"{name} is not set: kplug takes the coordinator from the first host of the node list."
        )
    tasks_name = (
        "SLURM_STEP_TASKS_PER_NODE" if "SLURM_STEP_TASKS_PER_NODE" in environ else "SLURM_TASKS_PER_NODE"
    )
    counts = expand_tasks_per_node(environ[tasks_name]) if environ.get(tasks_name) else []
    hosts = tuple(node for node, count in zip(nodes, counts, strict=False) for _ in range(count))
    if not counts and len(nodes) == 1:  # one node: every task runs on it
        hosts = (nodes[0],) * size
    if environ.get("MASTER_PORT"):
        port = _integer(environ, "MASTER_PORT")
    else:
        port = 10000 + _integer(environ, "SLURM_JOB_ID", "0") % 20000
    return ProcessGroup(
        engine="slurm",
        rank=_integer(environ, "SLURM_PROCID"),
        world_size=size,
        local_rank=_integer(environ, "SLURM_LOCALID", "0"),
        host=environ.get("MASTER_ADDR") or nodes[0],
        port=port,
        hosts=hosts if len(hosts) == size else (),
    )


def process_group(environ: Mapping[str, str] | None = None) -> ProcessGroup:
    """The group this process belongs to, from torchrun's or SLURM's variables (see the module docstring).

    Raises:
        ConfigError: a variable is not a number, or the node list cannot be read.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" in environ:
        return _torchrun(environ)
    if "SLURM_PROCID" in environ and ("SLURM_NTASKS" in environ or "SLURM_STEP_NUM_TASKS" in environ):
        return _slurm(environ)
    return ProcessGroup()


def join_process_group(backend: str, environ: MutableMapping[str, str] | None = None) -> ProcessGroup:
    """Export torchrun's variables (and on TensorFlow ``TF_CONFIG``) for this process's group.

    Under SLURM this sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
    ``MASTER_PORT`` from SLURM's variables, so torch.distributed (``env://``) and kplug's
    distributions need nothing else; on TensorFlow each process of a group whose hosts are
    known gets its ``TF_CONFIG``. In a multi-node torchrun group the processes exchange their
    addresses through torchrun's store (every process must call this) and get ``TF_CONFIG`` on
    TensorFlow, or on JAX ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (rank 0's address),
    ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``.
    Variables already set are kept. A single process changes nothing.
    """
    environ = os.environ if environ is None else environ
    group = process_group(environ)
    if group.world_size < 2:
        return group
    if group.engine == "slurm" and "WORLD_SIZE" not in environ:
        environ.update(
            RANK=str(group.rank),
            WORLD_SIZE=str(group.world_size),
            LOCAL_RANK=str(group.local_rank),
            MASTER_ADDR=str(group.host),
            MASTER_PORT=str(group.port),
            KPLUG_PROCESS_ENGINE="slurm",
        )
    workers = group.tf_workers()
    if backend == "tensorflow" and workers and not environ.get("TF_CONFIG"):
        environ["TF_CONFIG"] = cluster_tf_config(workers, group.rank)
    elif _needs_address_exchange(backend, group, environ):
        _exchange_through_torchrun(backend, group, environ)
    return group


def _needs_address_exchange(backend: str, group: ProcessGroup, environ: Mapping[str, str]) -> bool:
    """A multi-node torchrun group on TensorFlow or JAX whose addresses the user did not give."""
    if group.engine != "torchrun" or group.hosts or not group.coordinator:
        return False
    if environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":  # no torchrun agent holds a store
        return False
    if backend == "tensorflow":
        return not environ.get("TF_CONFIG")
    return backend == "jax" and not environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")


def _exchange_through_torchrun(backend: str, group: ProcessGroup, environ: MutableMapping[str, str]) -> None:
    """Set ``TF_CONFIG`` (TensorFlow) or Keras' JAX coordinator variables from the addresses the
    group's processes exchange in torchrun's store."""
    from kplug.backend.torch_store import exchange_addresses

    # unique to this rendezvous and restart: torchrun's store lives as long as its agent
    key = "kplug/{}/{}/addresses".format(
        environ.get("TORCHELASTIC_RUN_ID", "none"), environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    )
    addresses = exchange_addresses(str(group.host), int(group.port or 0), group.rank, group.world_size, key)
    if backend == "tensorflow":
        environ["TF_CONFIG"] = cluster_tf_config(addresses, group.rank)
    else:  # keras.distribution.initialize reads these; rank 0's address is the coordinator
        environ.update(
            KERAS_DISTRIBUTION_JOB_ADDRESSES=addresses[0],
            KERAS_DISTRIBUTION_NUM_PROCESSES=str(group.world_size),
            KERAS_DISTRIBUTION_PROCESS_ID=str(group.rank),
        )
