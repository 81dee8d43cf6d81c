"""``kplug train`` with ``distribution: {name: ray}``: join the cluster, train there, restart a lost group."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import kplug
from kplug import plugin

from kplug_ray.options import RayOptions

CHECKPOINT_DIR = "checkpoints"  # where kplug keeps a run's checkpoints, inside its run directory


def import_ray() -> Any:
    """The ``ray`` module, or a ``ConfigError`` that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise kplug.ConfigError(
            f"distribution.name = 'ray' needs Ray on this host and on the cluster ({error}); install it "
            f"with `pip install ray` (kplug is tested with ray==2.60.0), or choose another distribution."
        ) from None
    return ray


def connect(ray: Any, options: RayOptions) -> str:
    """Join the cluster at ``options.address`` (``local``: start one in this process); return its address."""
    try:
        if options.address == "local":
            needed = math.ceil(options.workers * options.cpus_per_worker)
            ray.init(
                address="local", num_cpus=max(needed, 1), include_dashboard=False, configure_logging=False
            )
        else:
            ray.init(address=options.address, configure_logging=False)
    except Exception as error:  # ConnectionError, or a local node that did not start in time
        raise kplug.ConfigError(
            f"distribution.options.address = {options.address!r}: could not join a Ray cluster "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). Start one with `ray start --head`, "
            f"give its HOST:PORT, or use address: local on one machine."
        ) from None
    return ray.get_runtime_context().gcs_address


def check_resources(ray: Any, options: RayOptions) -> None:
    """Refuse a group the cluster cannot hold (Ray would wait for the resources forever)."""
    available = ray.cluster_resources()
    for resource, each in (("CPU", options.cpus_per_worker), ("GPU", options.gpus_per_worker)):
        needed = options.workers * each
        if needed > available.get(resource, 0):
            raise kplug.ConfigError(
                f"distribution.options: workers = {options.workers} with {each:g} {resource}(s) each need "
                f"{needed:g} {resource}(s); the Ray cluster has {available.get(resource, 0):g}. "
                f"Lower workers or {resource.lower()}s_per_worker, or add nodes."
            )


def has_checkpoint(run_dir: Path) -> bool:
    """Whether the run directory holds a complete checkpoint (not a ``.partial-*`` one) to resume from."""
    folder = run_dir / CHECKPOINT_DIR
    return folder.is_dir() and any(not entry.name.startswith(".") for entry in folder.iterdir())


def launch(config: kplug.RunConfig, train: dict[str, Any]) -> int:
    """Train the run on the Ray cluster of ``config.distribution.options``; return the exit code.

    A group that loses a worker is stopped and, ``max_failures`` times at most, started again
    from the run directory's last checkpoint (``kplug train --resume RUN_DIR``).

    Raises:
        ConfigError: Ray is missing, no cluster answers, or it lacks the resources asked for.
        TrainingError: a worker failed and no restart is left (or no checkpoint to restart from).
    """
    options = RayOptions(**config.distribution.options)
    ray = import_ray()
    from kplug_ray.group import run_group

    address = connect(ray, options)
    try:
        check_resources(ray, options)
        print(
            f"kplug-ray: training on the Ray cluster at {address} with {options.workers} worker(s)",
            flush=True,
        )
        for attempt in range(options.max_failures + 1):
            failure = run_group(ray, options, train, address, restarts=attempt)
            if failure is None:
                print(f"Run directory: {os.path.abspath(config.run_dir())}")
                return 0
            run_dir = Path(os.path.abspath(config.run_dir()))
            if attempt == options.max_failures or not has_checkpoint(run_dir):
                why = "no restart left" if attempt == options.max_failures else f"no checkpoint in {run_dir}"
                raise kplug.TrainingError(
                    f"kplug-ray: {failure} ({why}; max_failures = {options.max_failures})."
                )
            print(
                f"kplug-ray: {failure}; starting the group again from the last checkpoint in {run_dir}",
                flush=True,
            )
            train = {"config": None, "output": None, "resume": str(run_dir)}
    finally:
        ray.shutdown()
    return 1  # not reached: the loop returns or raises


def record_cluster(run: plugin.RunContext, result: kplug.FitResult, cluster: dict[str, Any]) -> None:
    """Add ``ray`` (the cluster's address and every worker) to the run's ``report.json``."""
    if run.distribution is not None and not run.distribution.is_chief:
        return  # rank 0 writes the run directory
    result.report["ray"] = cluster
    plugin.write_json(Path(result.run_dir) / plugin.REPORT_FILE, result.report)
