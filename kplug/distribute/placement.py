"""``Distribution``: where a model is built and trained (devices, processes and strategy).

A distribution component returns a ``Distribution``. The trainer builds the
model and runs every stage inside ``scope()`` and calls the optional checks and
hooks below at fixed points, never inside the compiled train step:

1. ``check_model(model)`` once the model is built (e.g. a layout rule that
   matches no variable);
2. ``check_batches(split, rows, batch_size, where)`` for every split and batch
   size before anything is written (a batch that does not split evenly over the
   replicas);
3. ``shard_batches(batches)`` and ``prepare_stage(model)`` / ``callbacks()`` for
   each stage of a multi-process run (torch DistributedDataParallel);
4. ``describe(model)`` for ``report.json``.

The base class is one device in one process: every hook is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras

from kplug.errors import ConfigError

if TYPE_CHECKING:
    from kplug.plugin.manager import Plugins


def list_devices() -> list[str]:
    """Devices visible to the active Keras backend."""
    backend = keras.backend.backend()
    try:
        return [str(device) for device in keras.distribution.list_devices()]
    except Exception:  # keras.distribution lists devices on jax only
        pass
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_logical_devices()]
    if backend == "torch":
        import torch

        count = torch.cuda.device_count()
        return [f"cuda:{i}" for i in range(count)] or ["cpu:0"]
    return ["cpu:0"]


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


class Distribution:
    """Base class of distribution components: one device in one process.

    Attributes:
        name: the component name recorded in ``report.json``.
        replicas: how many model replicas each global batch is split between.
        processes: how many processes train together (one per device on torch).
        rank: this process's index among them; only rank 0 writes the run directory.
    """

    name = "single-device"
    replicas = 1
    processes = 1
    rank = 0

    # Whether the last, smaller batch of a split must also divide by ``replicas``
    # (JAX shards every batch evenly; tf.distribute accepts a ragged last batch).
    even_last_batch = True

    def __init__(self) -> None:
        """Subclasses take their options as keyword arguments (checked against the config)."""

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory (rank 0)."""
        return self.rank == 0

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Context in which the model, optimizer and training run."""
        yield

    def check_model(self, model: keras.Model) -> None:
        """Refuse a model this placement cannot run (called once it is built, before training)."""

    def check_batches(self, split: str, rows: int, batch_size: int, where: str) -> None:
        """Refuse a batch size that does not split evenly over the replicas.

        Args:
            split: ``train``, ``validation`` or ``test``.
            rows: examples in that split.
            batch_size: the global batch size used on it.
            where: the config field that sets ``batch_size`` (named in the error).

        Raises:
            ConfigError: naming the field, the value and the replica count.
        """
        if self.replicas <= 1 or rows == 0:
            return
        if batch_size % self.replicas:
            raise ConfigError(
                f"{where} = {batch_size}: distribution '{self.name}' splits every batch over "
                f"{self.replicas} replicas, so the batch size must be a multiple of {self.replicas} "
                f"(e.g. {max(self.replicas, batch_size - batch_size % self.replicas)})."
            )
        last = rows % batch_size
        if self.even_last_batch and last % self.replicas:
            raise ConfigError(
                f"{where} = {batch_size}: the {split} split has {rows} examples, so its last batch has "
                f"{last}, which does not split over {self.replicas} replicas. Choose a batch size "
                f"or split sizes (data.limit, data.split) that leave a multiple of {self.replicas}."
            )

    def shard_batches(self, batches: Any) -> Any:
        """This process's part of each global training batch (every batch, in one process).

        Args:
            batches: a sequence (e.g. ``keras.utils.PyDataset``) of global
                ``(x, y[, sample_weight])`` numpy batches in the run's order.
        """
        return batches

    def prepare_stage(self, model: keras.Model) -> None:
        """Called after each stage is compiled and before it trains (e.g. wrap for DDP)."""

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Callbacks run before kplug's own in every stage (e.g. averaging logs over processes)."""
        return []

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        """What ``report.json`` records about placement."""
        devices = list_devices()
        return {
            "strategy": self.name,
            "replicas": self.replicas,
            "processes": self.processes,
            "devices": devices[:1],
            "visible_devices": devices,
        }


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


def choose_auto(plugins: Plugins) -> Distribution:
    """The distribution ``auto`` picks on this machine, for this backend.

    Every registered distribution may offer itself with the ``auto`` extra of
    ``register``: a callable returning a ``Distribution`` when it fits the devices
    and processes found, else ``None``. The offers are tried by ``auto_priority``
    (highest first); when none fits, one device.

    Example::

        register("data-parallel", DataParallel, backends=("jax",), auto=offer, auto_priority=10)
    """
    backend = keras.backend.backend()
    offers = [
        component
        for component in plugins.registry
        if component.kind == "distribution"
        and callable(component.extra("auto"))
        and (component.backends is None or backend in component.backends)
    ]
    offers.sort(key=lambda c: (-int(c.extra("auto_priority")), c.name))
    for component in offers:
        chosen = component.extra("auto")()
        if chosen is not None:
            return chosen
    return Distribution()


def describe_auto(plugins: Plugins) -> dict[str, Any]:
    """What ``distribution: auto`` would choose here (for ``kplug doctor``), or why it cannot."""
    from kplug.errors import KplugError

    try:
        chosen = choose_auto(plugins)
    except KplugError as error:
        return {"error": str(error)}
    placement = chosen.describe()
    if type(chosen) is Distribution:
        placement["strategy"] = "single-device"
    return placement


def build_distribution(chosen: Any, plugins: Plugins) -> Distribution:
    """Build the run's distribution component and check it fits the processes launched.

    Args:
        chosen: the resolved ``distribution`` component (``ResolvedRun.distribution``).
        plugins: the loaded plugins (``auto`` looks through their distributions).
    """
    from kplug.errors import KplugError
    from kplug.plugin.options import accepts_argument
    from kplug.plugin.resolve import first_line

    component = chosen.component
    extra = {"plugins": plugins} if accepts_argument(component.factory, "plugins") else {}
    try:
        distribution = component.factory(**chosen.options, **extra)
    except KplugError:
        raise  # already names the option and what is allowed
    except (ValueError, TypeError) as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in chosen.options.items()) or "no options"
        raise ConfigError(
            f"distribution: '{component.name}' could not be built from its options ({shown}): {first_line(error)}"
        ) from None
    if not isinstance(distribution, Distribution):
        from kplug.errors import PluginError

        raise PluginError(
            f"Distribution '{chosen.component.name}' ({chosen.component.provider}) returned "
            f"{type(distribution).__name__}; a distribution factory must return a kplug.Distribution."
        )
    check_process_group(distribution)
    return distribution


def sharding_table(model: keras.Model) -> dict[str, str]:
    """Each variable's path and how it is placed (for ``report.json``), where the backend says."""
    table = {}
    for variable in model.weights:
        value = getattr(variable, "value", None)
        sharding = getattr(value, "sharding", None)
        spec = getattr(sharding, "spec", None)
        table[variable.path] = str(spec) if spec is not None else str(sharding)
    return table


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (held open together while chosen)."""
    import socket

    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def tf_config(ports: Sequence[int], rank: int) -> str:
    """``TF_CONFIG`` of process ``rank`` in a cluster of workers on this host, one per port.

    The format ``tf.distribute.MultiWorkerMirroredStrategy`` reads; worker 0 is the chief.
    """
    import json

    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}})


def launch(argv: Sequence[str], nproc: int, port: int | None = None) -> int:
    """Run ``kplug`` with ``argv`` in ``nproc`` processes on this host, torchrun-style.

    Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
    ``MASTER_PORT``, and on the tensorflow backend its ``TF_CONFIG`` (see ``tf_config``).
    When one process fails the others are stopped.

    Returns:
        0 when every process succeeded, else the first non-zero exit code.
    """
    import subprocess
    import sys
    import time

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
