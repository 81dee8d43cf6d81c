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
from kplug.plugin import PathPattern, no_match_error, process_group, variable_paths, world_size

from kplug_distribute.placement import describe_placement, process_share

CPU_HINT = (
    "On a CPU-only machine JAX sees one device unless XLA_FLAGS=--xla_force_host_platform_device_count=N "
    "is set before the process starts."
)


def _initialize(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Join a multi-process JAX run (several hosts) when one is configured, once per process."""
    coordinator = coordinator or os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES")
    group = process_group()  # torchrun's (or kplug train --nproc's) or SLURM's variables
    if coordinator is None and group.world_size > 1 and group.jax_coordinator:
        coordinator = group.jax_coordinator
        num_processes = num_processes or group.world_size
        process_id = group.rank if process_id is None else process_id
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
            ``KERAS_DISTRIBUTION_JOB_ADDRESSES``; by default ``MASTER_ADDR`` and the port
            after ``MASTER_PORT``, from ``kplug train --nproc``, torchrun or SLURM).
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
        return process_share(self, batches)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        details = {
            "devices": self.devices,
            "mesh": {"batch": self.replicas},
            "visible_devices": keras.distribution.list_devices(),
        }
        return describe_placement(self, model, details)


class _RuleModelParallel(keras.distribution.ModelParallel):
    """``keras.distribution.ModelParallel`` whose layouts come from kplug's checked rules."""

    def __init__(self, owner: ModelParallel, layout_map: keras.distribution.LayoutMap, batch_axis: str):
        # kplug hands each process its own slice of every batch (shard_batches)
        super().__init__(layout_map=layout_map, batch_dim_name=batch_axis, auto_shard_dataset=False)
        self._owner = owner

    def get_variable_layout(self, variable: Any) -> Any:
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        axes = self._owner.initial_axes(variable.path, tuple(variable.shape))
        return keras.distribution.TensorLayout(axes, self.device_mesh)

    def get_tensor_layout(self, path: str) -> Any:
        return None


class ModelParallel(kplug.Distribution):
    """Shard variables over a device mesh by layout rules, and batches over its batch axis (JAX).

    Args:
        mesh: axis name -> size, in order; the sizes multiply to the devices used
            (default ``{"batch": 1, "model": <all devices>}``).
        layout: pattern -> one mesh axis name (or null) per dimension of the variables
            it selects, e.g. ``{"backbone/*dense*/kernel": [null, model]}``. Patterns are
            kplug's layer-path dialect (``kplug.model.paths``: globs or ``re:`` regexes on
            stable paths such as ``backbone/dense1/kernel``; a pattern selects a variable
            by its path or a layer holding it). The variables are created whole and
            placed by the rules once the model is built (``check_model``). Default:
            shard the last axis of every ``kernel`` and ``embeddings`` on ``model_axis``
            where it divides evenly, as each variable is created.
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
        self._patterns = {
            pattern: PathPattern.compile(pattern, f"distribution.options.layout[{pattern!r}]")
            for pattern in layout or {}
        }
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
        unknown = [axis for axis in axes if axis is not None and axis not in mesh]
        if unknown:
            raise kplug.ConfigError(
                f"{where} = {list(axes)}: axis {unknown[0]!r} is not in the mesh; axes: "
                f"{', '.join(mesh)} (or null to keep a dimension whole)."
            )
        return tuple(axes)

    def initial_axes(self, keras_path: str, shape: tuple[int, ...]) -> tuple[str | None, ...]:
        """Where a variable is placed as Keras creates it, before the model (and its paths) exist.

        The default layout needs only the variable's name and shape; with layout rules
        every variable starts whole and ``check_model`` places it by its stable path.
        """
        if (
            self.default_layout
            and keras_path.rsplit("/", 1)[-1] in ("kernel", "embeddings")
            and len(shape) >= 2
        ):
            if self.model_axis in self.mesh and shape[-1] % self.mesh[self.model_axis] == 0:
                return (None,) * (len(shape) - 1) + (self.model_axis,)
        return (None,) * len(shape)

    def axes_for(self, path: str, shape: tuple[int, ...]) -> tuple[str | None, ...]:
        """The mesh axis of each dimension of the variable at stable ``path`` (``None``: not sharded)."""
        matching = [text for text, pattern in self._patterns.items() if pattern.matches_variable(path)]
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
        axes = self.initial_axes(path, shape)
        if any(axis is not None for axis in axes):
            self.matches[path] = "default"
        return axes

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
        """Place every variable by the layout rules, on its stable path; refuse a rule that selects none.

        Raises:
            ConfigError: a rule that selects no variable (a typo would otherwise shard
                nothing), a variable selected by several rules, or a rule whose axes do
                not fit a variable it selects.
        """
        variables = variable_paths(model)
        for text, pattern in self._patterns.items():
            if not any(pattern.matches_variable(path) for path in variables):
                hint = _old_form(text, variables)
                raise no_match_error(
                    f"distribution.options.layout[{text!r}]", text, variables, "variable", hint
                )
        self.matches = {}
        for path, variable in variables.items():
            axes = self.axes_for(path, tuple(variable.shape))
            layout = getattr(variable, "_layout", None)
            if layout is not None and tuple(layout.axes) != axes:
                variable._layout = keras.distribution.TensorLayout(axes, self._keras.device_mesh)
                variable.assign(variable.value)  # re-placed on the devices by its new layout

    def shard_batches(self, batches: Any) -> Any:
        return process_share(self, batches)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        details = {
            "devices": self.devices,
            "mesh": self.mesh,
            "layout": {pattern: list(axes) for pattern, axes in self.rules.items()} or "default",
            "visible_devices": keras.distribution.list_devices(),
        }
        placement = describe_placement(self, model, details)
        if model is not None:
            placement["rules_matched"] = dict(self.matches)  # by stable path
        return placement


def _old_form(rule: str, variables: dict[str, Any]) -> str:
    """A hint when ``rule`` is a raw regex on Keras' variable paths, the form layout rules had before."""
    try:
        meant = [path for path, variable in variables.items() if re.fullmatch(rule, variable.path)]
    except re.error:
        return ""
    if not meant:
        return ""
    return (
        f"Layout rules match kplug's stable paths, no longer Keras' variable paths with raw regexes: "
        f"on Keras' paths this rule selects {', '.join(meant[:4])}; write 're:.*/{rule}' or a glob."
    )


def offer_data_parallel() -> kplug.Distribution | None:
    """``auto`` on JAX: data parallel over every device when there are several."""
    # world_size first: listing devices starts XLA, after which a process group cannot be joined
    if world_size() == 1 and len(keras.distribution.list_devices()) < 2:
        return None
    return DataParallel()
