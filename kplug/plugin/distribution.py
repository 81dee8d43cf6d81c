"""``Distribution``: the contract of a distribution component (where a model is built and trained).

A distribution component (registered with ``kplug_register_distributions``)
returns a ``Distribution``. The trainer builds the model and runs every stage
inside ``scope()`` and calls the optional checks and hooks below at fixed
points, never inside the compiled train step:

1. ``check_model(model)`` once the model is built (e.g. a layout rule that
   matches no variable);
2. ``check_batches(split, rows, batch_size, where)`` for every split and batch
   size before anything is written (a batch size that does not split evenly over
   the replicas), and ``batch_multiple(split)``: the replica count every batch of
   a split must split into; kplug pads a shorter last batch with zero-weight rows
   (``kplug.data.padding``) so losses, gradients and metrics stay those of the real rows;
3. ``shard_batches(batches)`` and ``prepare_stage(model)`` / ``callbacks()`` for
   each stage of a multi-process run (torch DistributedDataParallel);
4. ``describe(model)`` for ``report.json``.

The base class is one device in one process: every hook is a no-op. A plugin
overrides what its placement changes and sets the class attributes.

Example::

    class DataParallel(Distribution):
        name = "data-parallel"

        def __init__(self, devices: int | None = None):
            self.replicas = devices or len(keras.distribution.list_devices())
            self._layout = keras.distribution.DataParallel()

        @contextlib.contextmanager
        def scope(self):
            with self._layout.scope():
                yield

    @hookimpl
    def kplug_register_distributions(register):
        register("data-parallel", DataParallel, backends=("jax",))
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras

from kplug.distribute.devices import list_devices
from kplug.errors import ConfigError


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

    # Whether every batch, the last and smaller one too, must split evenly over ``replicas``
    # (JAX shards every batch evenly; tf.distribute accepts a ragged last batch, but averages
    # its replicas' unequal shares as if equal). kplug pads such a last batch with zero-weight
    # rows (``batch_multiple``).
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

    def batch_multiple(self, split: str) -> int:
        """The number every batch of ``split`` must split into (1: any size).

        kplug pads a last batch that does not split with zero-weight rows: on ``train`` its
        real rows' loss and gradient are unchanged; on ``validation`` and ``test`` every
        metric equals the unpadded evaluation's (``kplug.data.padding``).
        """
        return self.replicas if self.even_last_batch and self.replicas > 1 else 1

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
