"""JAX: data parallel and model parallel through ``keras.distribution``.

``keras.distribution`` shards only on JAX (on TensorFlow it is silently ignored
and on torch it fails), so these strategies are registered for ``jax`` only.

Both run one program over the global batch sharded over the devices, so a
BatchNormalization layer's batch statistics are already those of the global batch
(XLA inserts the all-reduce), and ``report.json`` says so.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import keras
import kplug
from kplug.plugin import process_rank, sharding_table, world_size

from kplug_distribute.batchnorm import GLOBAL, has_batchnorm

CPU_HINT = (
    "On a CPU-only machine JAX sees one device unless XLA_FLAGS=--xla_force_host_platform_device_count=N "
    "is set before the process starts."
)


def _initialize(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-process JAX run (several hosts) when one is configured, once per process."""
    coordinator = coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    if coordinator is None and world_size() > 1 and os.environ.get("MASTER_ADDR"):
        coordinator = f"{os.environ['MASTER_ADDR']}:{os.environ.get('MASTER_PORT', '1234')}"
        num_processes = num_processes or world_size()
        process_id = process_rank() if process_id is None else process_id
    if coordinator is None:
        return
    import jax

    if jax.distributed.is_initialized():  # once per process (process_count() would start XLA)
        return
    keras.distribution.initialize(coordinator, num_processes, process_id)


def _devices(count: int | None, name: str) -> list[str]:
    available = keras.distribution.list_devices()
    if count is not None and count > len(available):
        raise kplug.ConfigError(
            f"distribution.options.devices = {count}: '{name}' found only {len(available)} device(s) "
            f"({', '.join(available)}). {CPU_HINT}"
        )
    return available[: count or len(available)]


class DataParallel(kplug.Distribution):
    """Replicate the model on every device and split each batch between them (JAX).

    Args:
        devices: how many devices to use (default: all that JAX sees).
        coordinator: ``host:port`` of process 0 in a multi-host run (or
            ``KERAS_DISTRIBUTION_JOB_ADDRESSES``; ``MASTER_ADDR``/``MASTER_PORT`` from
            ``kplug train --nproc`` or torchrun also work).
        num_processes: processes in a multi-host run (``KERAS_DISTRIBUTION_NUM_PROCESSES``).
        process_id: this process's id (``KERAS_DISTRIBUTION_PROCESS_ID``).
    """

    name = "data-parallel"

    def __init__(
        self,
        devices: int | None = None,
        coordinator: str | None = None,
        num_processes: int | None = None,
        process_id: int | None = None,
    ) -> None:
        _initialize(coordinator, num_processes, process_id)
        used = _devices(devices, self.name)
        if len(used) < 2:
            raise kplug.ConfigError(
                f"distribution.name = '{self.name}': only {len(used)} device ({', '.join(used)}) is "
                f"available, so nothing would run in parallel. Use 'single-device' or 'auto'. {CPU_HINT}"
            )
        import jax

        self.devices = used
        self.replicas = len(used)
        self.processes = jax.process_count()
        self.rank = jax.process_index()
        # kplug hands each process its own slice of every batch (shard_batches)
        self._keras = keras.distribution.DataParallel(devices=used, auto_shard_dataset=False)

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with self._keras.scope():
            yield

    def shard_batches(self, batches: Any) -> Any:
        from kplug_distribute.batches import ProcessShard

        return batches if self.processes == 1 else ProcessShard(batches, self.rank, self.processes)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        placement = {
            "strategy": self.name,
            "replicas": self.replicas,
            "processes": self.processes,
            "devices": self.devices,
            "mesh": {"batch": self.replicas},
            "visible_devices": keras.distribution.list_devices(),
        }
        if model is not None:
            placement["variables"] = sharding_table(model)
        if has_batchnorm(model):
            placement["batchnorm_statistics"] = GLOBAL
        return placement


class _RuleModelParallel(keras.distribution.ModelParallel):
    """``keras.distribution.ModelParallel`` whose layouts come from kplug's checked rules."""

    def __init__(self, owner: ModelParallel, layout_map: keras.distribution.LayoutMap, batch_axis: str):
        # kplug hands each process its own slice of every batch (shard_batches)
        super().__init__(layout_map=layout_map, batch_dim_name=batch_axis, auto_shard_dataset=False)
        self._owner = owner

    def get_variable_layout(self, variable: Any) -> Any:
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        axes = self._owner.axes_for(variable.path, tuple(variable.shape))
        return keras.distribution.TensorLayout(axes, self.device_mesh)

    def get_tensor_layout(self, path: str) -> Any:
        return None


class ModelParallel(kplug.Distribution):
    """Shard variables over a device mesh by layout rules, and batches over its batch axis (JAX).

    Args:
        mesh: axis name -> size, in order; the sizes multiply to the devices used
            (default ``{"batch": 1, "model": <all devices>}``).
        layout: regex -> one mesh axis name (or null) per dimension of the variables
            it matches, e.g. ``{".*dense.*kernel": [null, model]}``. A regex must match
            a variable's whole path (``backbone/dense1/kernel``), as in
            ``keras.distribution.LayoutMap``. Default: shard the last axis of every
            ``kernel`` and ``embeddings`` on ``model_axis`` where it divides evenly.
        batch_axis: the mesh axis batches are split over.
        model_axis: the mesh axis the default layout shards on.
        coordinator, num_processes, process_id: a multi-host run, as for ``data-parallel``.
    """

    name = "model-parallel"

    def __init__(
        self,
        mesh: dict[str, int] | None = None,
        layout: dict[str, list[str | None]] | None = None,
        batch_axis: str = "batch",
        model_axis: str = "model",
        coordinator: str | None = None,
        num_processes: int | None = None,
        process_id: int | None = None,
    ) -> None:
        _initialize(coordinator, num_processes, process_id)
        available = keras.distribution.list_devices()
        mesh = dict(mesh) if mesh else {batch_axis: 1, model_axis: len(available)}
        self._check_mesh(mesh, available, batch_axis)
        self.rules = {
            pattern: self._check_rule(pattern, axes, mesh) for pattern, axes in (layout or {}).items()
        }
        self.default_layout = layout is None
        self.model_axis = model_axis
        self.mesh = mesh
        self.devices = available[: math.prod(mesh.values())]
        self.replicas = mesh[batch_axis]
        import jax

        self.processes = jax.process_count()
        self.rank = jax.process_index()
        self.matches: dict[str, str] = {}  # variable path -> rule (or "default") that placed it
        device_mesh = keras.distribution.DeviceMesh(tuple(mesh.values()), list(mesh), self.devices)
        self._keras = _RuleModelParallel(self, keras.distribution.LayoutMap(device_mesh), batch_axis)

    @staticmethod
    def _check_mesh(mesh: dict[str, int], available: list[str], batch_axis: str) -> None:
        if any(not isinstance(size, int) or size < 1 for size in mesh.values()):
            raise kplug.ConfigError(
                f"distribution.options.mesh = {mesh}: every axis size must be a whole number >= 1."
            )
        total = math.prod(mesh.values())
        if len(available) % total:
            raise kplug.ConfigError(
                f"distribution.options.mesh = {mesh}: its sizes multiply to {total}, which does not divide "
                f"the {len(available)} device(s) found ({', '.join(available)}). Use axis sizes whose "
                f"product divides {len(available)}. {CPU_HINT}"
            )
        if total < 2:
            raise kplug.ConfigError(
                f"distribution.options.mesh = {mesh}: a mesh of 1 device runs nothing in parallel; "
                f"use 'single-device'. {CPU_HINT}"
            )
        if batch_axis not in mesh:
            raise kplug.ConfigError(
                f"distribution.options.batch_axis = {batch_axis!r}: not an axis of the mesh "
                f"({', '.join(mesh)})."
            )

    @staticmethod
    def _check_rule(pattern: str, axes: list[str | None], mesh: dict[str, int]) -> tuple[str | None, ...]:
        where = f"distribution.options.layout[{pattern!r}]"
        try:
            re.compile(pattern)
        except re.error as error:
            raise kplug.ConfigError(f"{where}: not a valid regular expression ({error}).") from None
        unknown = [axis for axis in axes if axis is not None and axis not in mesh]
        if unknown:
            raise kplug.ConfigError(
                f"{where} = {list(axes)}: axis {unknown[0]!r} is not in the mesh; axes: "
                f"{', '.join(mesh)} (or null to keep a dimension whole)."
            )
        return tuple(axes)

    def axes_for(self, path: str, shape: tuple[int, ...]) -> tuple[str | None, ...]:
        """The mesh axis of each dimension of the variable at ``path`` (``None``: not sharded)."""
        matching = [pattern for pattern in self.rules if re.fullmatch(pattern, path)]
        if len(matching) > 1:
            raise kplug.ConfigError(
                f"distribution.options.layout: variable {path!r} matches several rules "
                f"({', '.join(repr(p) for p in matching)}); make each variable match at most one."
            )
        if matching:
            axes = self.rules[matching[0]]
            self._check_fits(matching[0], axes, path, shape)
            self.matches[path] = matching[0]
            return axes
        if self.default_layout and path.rsplit("/", 1)[-1] in ("kernel", "embeddings") and len(shape) >= 2:
            if shape[-1] % self.mesh.get(self.model_axis, 1) == 0 and self.model_axis in self.mesh:
                self.matches[path] = "default"
                return (None,) * (len(shape) - 1) + (self.model_axis,)
        return (None,) * len(shape)

    def _check_fits(
        self, pattern: str, axes: tuple[str | None, ...], path: str, shape: tuple[int, ...]
    ) -> None:
        where = f"distribution.options.layout[{pattern!r}] = {list(axes)}"
        if len(axes) != len(shape):
            raise kplug.ConfigError(
                f"{where}: matches {path!r} of shape {shape}, which has {len(shape)} dimension(s); "
                f"give one axis (or null) per dimension."
            )
        for size, axis in zip(shape, axes, strict=True):
            if axis is not None and size % self.mesh[axis]:
                raise kplug.ConfigError(
                    f"{where}: {path!r} has shape {shape}; dimension {size} does not divide over mesh axis "
                    f"{axis!r} of size {self.mesh[axis]}."
                )

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with self._keras.scope():
            yield

    def check_model(self, model: keras.Model) -> None:
        """Refuse layout rules that matched no variable (a typo would otherwise shard nothing)."""
        paths = [variable.path for variable in model.weights]
        for pattern in self.rules:
            if not any(re.fullmatch(pattern, path) for path in paths):
                shown = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
                raise kplug.ConfigError(
                    f"distribution.options.layout[{pattern!r}]: matches no variable of the model. A rule "
                    f"must match a variable's whole path (prefix it with '.*'); the paths are: {shown}."
                )

    def shard_batches(self, batches: Any) -> Any:
        from kplug_distribute.batches import ProcessShard

        return batches if self.processes == 1 else ProcessShard(batches, self.rank, self.processes)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        placement = {
            "strategy": self.name,
            "replicas": self.replicas,
            "processes": self.processes,
            "devices": self.devices,
            "mesh": self.mesh,
            "layout": {pattern: list(axes) for pattern, axes in self.rules.items()} or "default",
            "visible_devices": keras.distribution.list_devices(),
        }
        if model is not None:
            placement["variables"] = sharding_table(model)
            placement["rules_matched"] = {
                path: rule for path, rule in self.matches.items() if path in placement["variables"]
            }
        if has_batchnorm(model):
            placement["batchnorm_statistics"] = GLOBAL
        return placement


def offer_data_parallel() -> kplug.Distribution | None:
    """``auto`` on JAX: data parallel over every device when there are several."""
    # world_size first: listing devices starts XLA, after which a process group cannot be joined
    if world_size() == 1 and len(keras.distribution.list_devices()) < 2:
        return None
    return DataParallel()
