"""The ``ray`` distribution: inside a worker, the multi-process strategy ``auto`` picks."""

from __future__ import annotations

import os

import kplug
from kplug import plugin

from kplug_ray.group import CLUSTER_VARIABLE


def ray_distribution(
    address: str = "auto",
    workers: int = 2,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    max_failures: int = 0,
    plugins: plugin.Plugins | None = None,
) -> kplug.Distribution:
    """Train on a Ray cluster: `kplug train` starts the workers; each trains with the strategy auto picks.

    The options are read by ``kplug train`` (``kplug_ray.launch``); in a worker, the placement is
    what ``distribution: auto`` picks for the group of processes Ray started.
    """
    if CLUSTER_VARIABLE not in os.environ:
        raise kplug.ConfigError(
            "distribution.name = 'ray': only `kplug train` sends a run to a Ray cluster (it starts "
            "the workers); kplug.fit and kplug.Trainer train in this process. Run `kplug train CONFIG`, "
            "or choose another distribution here."
        )
    if plugins is None:
        raise kplug.PluginError("distribution 'ray' needs the loaded plugins to build the workers' strategy.")
    return plugins.component("distribution", "auto").factory(plugins=plugins)
