"""kplug-ray: train a kplug run on a Ray cluster.

``distribution: {name: ray, options: {address: auto, workers: 2, cpus_per_worker: 1}}`` makes
``kplug train`` start ``workers`` Ray actors on the cluster, give each torchrun's variables
(and ``TF_CONFIG``), and train the run in them with the multi-process strategy of the backend
(ddp on torch, multi-worker-mirrored on TensorFlow, data-parallel over ``jax.distributed`` on
JAX). Rank 0 writes the run directory as in any run; ``report.json`` records the cluster and the
workers under ``ray``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import kplug

if TYPE_CHECKING:
    from kplug.plugin import Register, RunContext


@kplug.hookimpl
def kplug_register_distributions(register: Register) -> None:
    """Register ``ray``."""
    from kplug_ray.distribution import ray_distribution
    from kplug_ray.options import RayOptions

    register("ray", ray_distribution, options=RayOptions)


@kplug.hookimpl
def kplug_launch(config: kplug.RunConfig, train: dict[str, Any]) -> int | None:
    """Send a run with ``distribution: {name: ray}`` to its Ray cluster."""
    if config.distribution.name != "ray":
        return None
    from kplug_ray.launch import launch

    return launch(config, train)


@kplug.hookimpl
def kplug_on_fit_end(run: RunContext, result: kplug.FitResult) -> None:
    """Record the cluster and the workers in ``report.json`` (in a worker of a Ray group)."""
    from kplug_ray.group import CLUSTER_VARIABLE

    cluster = os.environ.get(CLUSTER_VARIABLE)
    if cluster is not None:
        from kplug_ray.launch import record_cluster

        record_cluster(run, result, json.loads(cluster))
