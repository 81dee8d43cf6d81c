"""The options of ``distribution: {name: ray, options: {...}}``."""

from __future__ import annotations

from kplug import plugin
from pydantic import Field


class RayOptions(plugin.Options):
    """Where the run's workers start and how many.

    Attributes:
        address: the Ray cluster to join: ``auto`` (the cluster this host belongs to, or
            ``RAY_ADDRESS``), ``HOST:PORT`` of its head, ``ray://HOST:10001``, or ``local`` (start a
            Ray instance in the ``kplug train`` process, for one machine).
        workers: training processes, one Ray actor each (one per node on TensorFlow and JAX,
            one per device on torch).
        cpus_per_worker: CPUs Ray reserves for each worker.
        gpus_per_worker: GPUs Ray reserves for each worker.
        max_failures: how often a group that lost a worker is started again from the run's last
            checkpoint before ``kplug train`` gives up.
    """

    address: str = Field("auto", min_length=1)
    workers: int = Field(2, ge=1)
    cpus_per_worker: float = Field(1.0, ge=0)
    gpus_per_worker: float = Field(0.0, ge=0)
    max_failures: int = Field(0, ge=0)
