"""PyTorch: DistributedDataParallel, one process per device, around Keras' own train step.

A Keras model on the torch backend is a ``torch.nn.Module``. ``Model.fit`` alone
does not synchronise gradients between processes, so for each stage kplug wraps
the model in ``torch.nn.parallel.DistributedDataParallel`` and replaces the
model's ``train_step`` with one whose forward pass goes through the wrapper: the
backward pass then averages gradients over the processes before the Keras
optimizer applies them. Each process trains on its slice of every global batch
(``shard_batches``), and the epoch's training metrics are averaged over the
processes before any callback sees them. Validation runs whole in every process
(the weights are identical), so its metrics need no averaging. BatchNormalization
layers train on statistics summed over the processes (``kplug_distribute.batchnorm``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import types
import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import keras
import kplug
from kplug.plugin import process_rank

from kplug_distribute.batchnorm import synchronise_batchnorm
from kplug_distribute.placement import describe_placement

LAUNCH_HINT = "Start it with `kplug train --nproc N CONFIG` or torchrun (which set RANK and WORLD_SIZE)."


def _ddp_train_step(self: keras.Model, data: Any, wrapper: Any) -> dict[str, Any]:
    """Keras' torch ``train_step`` (keras/src/backend/torch/trainer.py) with the forward pass
    through ``wrapper``, the model's ``DistributedDataParallel``."""
    import torch
    from keras.src import tree
    from keras.src.trainers.data_adapters import data_adapter_utils

    x, y, sample_weight = data_adapter_utils.unpack_x_y_sample_weight(data)
    y_pred = wrapper(x, training=True) if self._call_has_training_arg else wrapper(x)
    self.zero_grad()
    loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
    self._loss_tracker.update_state(
        loss, sample_weight=next(i for i in tree.flatten(x) if i is not None).shape[0]
    )
    if self.optimizer is not None:
        loss = self.optimizer.scale_loss(loss)
    if self.trainable_weights:
        loss.backward()  # DistributedDataParallel all-reduces (averages) the gradients here
        trainable_weights = self.trainable_weights[:]
        gradients = [v.value.grad for v in trainable_weights]
        with torch.no_grad():
            self.optimizer.apply(gradients, trainable_weights)
    else:
        warnings.warn("The model does not have any trainable weights.", stacklevel=2)
    return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


@functools.cache
def _sum_function() -> Any:
    import torch
    import torch.distributed as dist

    class SumOverProcesses(torch.autograd.Function):
        """All-reduce (sum) whose gradient is the all-reduced gradient, as in torch.nn.SyncBatchNorm."""

        @staticmethod
        def forward(ctx: Any, value: Any) -> Any:
            total = value.clone()
            dist.all_reduce(total)
            return total

        @staticmethod
        def backward(ctx: Any, gradient: Any) -> Any:
            total = gradient.clone()
            dist.all_reduce(total)
            return total

    return SumOverProcesses.apply


def process_sum(value: Any) -> Any:
    """``value`` summed over the processes of the group, differentiably (itself outside a group)."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return value
    return _sum_function()(value)


class AverageLogs(keras.callbacks.Callback):
    """Replace each epoch's training metrics by their mean over the processes, in place.

    Runs first, so kplug's metrics log, checkpoints and every other callback see the
    averaged values (equal shards make it the global-batch mean).
    """

    def __init__(self, processes: int) -> None:
        super().__init__()
        self.processes = processes

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        import torch
        import torch.distributed as dist

        if not logs:
            return
        names = sorted(name for name in logs if not name.startswith("val_"))
        values = torch.tensor([float(logs[name]) for name in names], dtype=torch.float64)
        dist.all_reduce(values)
        for name, value in zip(names, (values / self.processes).tolist(), strict=True):
            logs[name] = value


class DistributedDataParallel(kplug.Distribution):
    """One process per device; gradients averaged by torch DistributedDataParallel (torch).

    Args:
        backend: torch.distributed backend: ``gloo`` (CPU) or ``nccl`` (GPUs); default:
            ``nccl`` when CUDA is available, else ``gloo``.
        timeout_seconds: how long a collective waits for the other processes.
    """

    name = "ddp"

    def __init__(self, backend: str | None = None, timeout_seconds: int = 300) -> None:
        import torch
        import torch.distributed as dist

        if "WORLD_SIZE" not in os.environ:
            raise kplug.ConfigError(
                f"distribution.name = 'ddp': this process was not launched as one of a group, so it would "
                f"train alone. {LAUNCH_HINT}"
            )
        if backend is not None and backend not in ("gloo", "nccl", "mpi"):
            raise kplug.ConfigError(
                f"distribution.options.backend = {backend!r}: expected gloo (CPU), nccl (GPUs) or mpi."
            )
        self.backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.backend == "nccl":
            torch.cuda.set_device(self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group(self.backend, timeout=timedelta(seconds=timeout_seconds))
        self.rank = dist.get_rank()
        self.processes = self.replicas = dist.get_world_size()
        if self.rank != process_rank():
            raise kplug.ConfigError(f"RANK={process_rank()} but torch.distributed reports rank {self.rank}.")

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        import torch.distributed as dist

        try:
            yield
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()

    def check_batches(self, split: str, rows: int, batch_size: int, where: str) -> None:
        if split == "train":  # validation and test run whole in every process
            super().check_batches(split, rows, batch_size, where)

    def batch_multiple(self, split: str) -> int:
        return super().batch_multiple(split) if split == "train" else 1

    def shard_batches(self, batches: Any) -> Any:
        from kplug_distribute.batches import ProcessShard

        return ProcessShard(batches, self.rank, self.processes)

    def prepare_stage(self, model: keras.Model) -> None:
        """Wrap the compiled model for this stage's trainable set and route ``fit`` through it."""
        import torch

        device_ids = [self.local_rank] if self.backend == "nccl" else None
        if not any(p.requires_grad for p in model.parameters()):
            raise kplug.ConfigError(
                "distribution 'ddp': the stage trains no variable; nothing to synchronise."
            )
        # Not an attribute of the model: torch would register the wrapper as a submodule of
        # the module it wraps (a cycle).
        wrapper = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
        synchronise_batchnorm(model, process_sum)
        model.train_step = types.MethodType(functools.partial(_ddp_train_step, wrapper=wrapper), model)
        model.train_function = None  # rebuilt by fit around the new train_step
        model.make_train_function(force=True)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [AverageLogs(self.processes)]

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        import torch

        device = f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"
        details = {
            "rank": self.rank,
            "backend": self.backend,
            "devices": [device],
            "visible_devices": [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"],
        }
        return describe_placement(self, model, details, variables=None)


def offer_ddp() -> kplug.Distribution | None:
    """``auto`` on torch: DDP when this process is one of a launched group."""
    from kplug.plugin import world_size

    return DistributedDataParallel() if world_size() > 1 else None
