"""TensorFlow: ``tf.distribute`` strategies around ``Model.fit``.

- ``mirrored``: ``MirroredStrategy``, one process mirroring the model over this host's devices.
- ``multi-worker-mirrored``: ``MultiWorkerMirroredStrategy``, one process per worker (host),
  the cluster read from ``TF_CONFIG`` (``kplug train --nproc N`` sets it on one host).

Keras 3.15's TensorFlow trainer cannot run ``Model.fit`` under ``MultiWorkerMirroredStrategy``
with more than one worker as it comes; ``multi-worker-mirrored`` works around its two faults
(see ``_local_symbolic_build`` and ``_multi_worker_reduction``).
"""

from __future__ import annotations

import contextlib
import json
import os
import types
from collections.abc import Iterator
from typing import Any

import keras
import kplug
import numpy as np
from kplug.plugin import sharding_table, world_size

from kplug_distribute.batches import ProcessShard
from kplug_distribute.batchnorm import synchronise_batchnorm
from kplug_distribute.placement import describe_placement


def replica_sum(value: Any) -> Any:
    """``value`` summed over the replicas of the strategy running this step (differentiable).

    Outside a replica context (e.g. while Keras traces the model's shapes) it is this
    replica's value: there is nothing to sum yet.
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def split_cpu(count: int) -> list[str]:
    """Split the host CPU into ``count`` logical devices; possible only before TensorFlow starts.

    Logical CPUs run replicas one after another on the same cores: use them to check
    a setup on a laptop, not for speed.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    wanted = [tf.config.LogicalDeviceConfiguration()] * count
    try:
        tf.config.set_logical_device_configuration(cpus[0], wanted)
    except RuntimeError:
        present = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(present) == count:
            return present
        raise kplug.ConfigError(
            f"distribution.options.cpu_devices = {count}: TensorFlow has already started with "
            f"{len(present)} CPU device(s), and logical devices can only be set before it runs anything. "
            f"Set it in a fresh process (kplug train does)."
        ) from None
    return [d.name for d in tf.config.list_logical_devices("CPU")]


class Mirrored(kplug.Distribution):
    """Replicate the model on every GPU of this host and split each batch between them (TensorFlow).

    Args:
        devices: device names to use (default: every GPU TensorFlow sees).
        cpu_devices: split the CPU into this many logical devices and mirror over
            them instead (a correctness check without GPUs; no speed-up).
    """

    name = "mirrored"

    def __init__(self, devices: list[str] | None = None, cpu_devices: int = 0) -> None:
        import tensorflow as tf

        if cpu_devices:
            devices = split_cpu(cpu_devices)
        elif not devices:
            devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(devices) < 2:
            found = [d.name for d in tf.config.list_logical_devices()]
            raise kplug.ConfigError(
                f"distribution.name = 'mirrored': {len(devices)} GPU(s) found ({', '.join(found)}), so "
                f"nothing would run in parallel. Use 'single-device' or 'auto' (or cpu_devices: N to "
                f"check the setup on CPU)."
            )
        self.devices = list(devices)
        self._strategy = tf.distribute.MirroredStrategy(self.devices)
        self.replicas = self._strategy.num_replicas_in_sync

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with self._strategy.scope():
            yield

    def prepare_stage(self, model: keras.Model) -> None:
        """BatchNormalization statistics over the global batch, not each replica's slice."""
        synchronise_batchnorm(model, replica_sum)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        import tensorflow as tf

        details = {
            "devices": self.devices,
            "visible_devices": [d.name for d in tf.config.list_logical_devices()],
        }
        return describe_placement(self, model, details, _placement_table)


def _placement_table(model: keras.Model) -> dict[str, str]:
    """Each variable's path and ``mirrored`` where tf.distribute holds a copy per replica."""
    return {
        path: "mirrored" if "Mirrored" in type(v).__name__ or "Mirrored" in str(type(v.value)) else spec
        for (path, spec), v in zip(sharding_table(model).items(), model.weights, strict=True)
    }


def offer_mirrored() -> kplug.Distribution | None:
    """``auto`` on TensorFlow: mirror over the GPUs when there are several."""
    import tensorflow as tf

    if len(tf.config.list_logical_devices("GPU")) < 2:
        return None
    return Mirrored()


def read_tf_config() -> tuple[list[str], int] | None:
    """The cluster's task addresses (chief first, then workers) and this task's index in them.

    ``None`` when ``TF_CONFIG`` is not set. The index is the process rank: task 0 (the
    chief, or worker 0 when there is no chief) writes the run directory.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        cluster, task = spec.get("cluster", {}), spec.get("task", {})
        tasks = [("chief", i) for i in range(len(cluster.get("chief", [])))]
        tasks += [("worker", i) for i in range(len(cluster.get("worker", [])))]
        addresses = list(cluster.get("chief", [])) + list(cluster.get("worker", []))
        rank = tasks.index((task.get("type"), int(task.get("index", 0))))
    except (ValueError, TypeError, AttributeError):
        raise kplug.ConfigError(
            f'TF_CONFIG={raw!r}: expected JSON like {{"cluster": {{"worker": ["host0:port", '
            f'"host1:port"]}}, "task": {{"type": "worker", "index": 0}}}} whose task is one of '
            f"the cluster's chief or worker tasks."
        ) from None
    return addresses, rank


@contextlib.contextmanager
def _multi_worker_reduction() -> Iterator[None]:
    """Reduce each step's logs over the workers correctly while Keras' trainer runs.

    Keras 3.15 reduces the scalar logs of a train/test step under a multi-worker
    strategy with ``strategy.reduce("MEAN", value, axis=0)``, which fails for a scalar
    ("Invalid reduction dimension 0 for input with 0 dimensions"). Each worker's value
    is its local mean over equal shards, so the mean over workers (``axis=None``) is the
    global one. Only the ``auto`` reduction of train and test steps is replaced, only
    under a multi-worker strategy, and only inside the strategy's scope.
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            return keras.tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original(values, strategy, reduction)

    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = original


def _local_symbolic_build(self: keras.Model, iterator: Any = None, data_batch: Any = None) -> None:
    """Keras' ``_maybe_symbolic_build`` (keras/src/backend/tensorflow/trainer.py) taking this
    worker's first batch as it is.

    Keras 3.15 first calls ``strategy.reduce("MEAN", (x, y), axis=None)`` on it, only to learn
    its shapes; ``MultiWorkerMirroredStrategy`` cannot reduce a tuple of per-replica values
    ("Attempt to convert a value (PerReplica:...) ... to a Tensor"). The local values have the
    same shapes and need no collective.
    """
    strategy = self.distribute_strategy
    if iterator is not None:
        for _, _, batches in iterator:
            data_batch = keras.tree.map_structure(
                lambda value: strategy.experimental_local_results(value)[0], next(batches)
            )
            break
    with strategy.scope():
        self._symbolic_build(data_batch=data_batch)


class MultiWorkerMirrored(kplug.Distribution):
    """One process per worker; each mirrors the model on its devices and gradients are
    all-reduced over every worker (TensorFlow ``MultiWorkerMirroredStrategy``).

    The cluster comes from ``TF_CONFIG`` (``kplug train --nproc N`` sets it for N processes
    on this host). Every worker reads kplug's global batch stream and trains on its own
    slice of each batch (``shard_batches``), so together they take the steps a single
    device takes on the whole batch.

    Args:
        communication: collective implementation: ``auto``, ``ring`` (gRPC, CPU) or ``nccl`` (GPUs).
        timeout_seconds: how long a collective waits for the other workers (default: no limit).
    """

    name = "multi-worker-mirrored"
    # every batch, the last too, splits evenly over the workers: kplug pads a last batch that
    # does not with zero-weight rows. Validation and test metrics stay exact: Keras reads each
    # metric's totals and counts summed over every worker's replicas (sum on read), not a mean
    # of the workers' own results.
    even_last_batch = True

    IMPLEMENTATIONS = ("auto", "ring", "nccl")

    def __init__(self, communication: str = "auto", timeout_seconds: float | None = None) -> None:
        import tensorflow as tf

        found = read_tf_config()
        if found is None or len(found[0]) < 2:
            shown = "not set" if found is None else f"lists {len(found[0])} task"
            raise kplug.ConfigError(
                f"distribution.name = '{self.name}': TF_CONFIG is {shown}, so this process is not one of "
                f"a group of workers and would train alone. Start it with `kplug train --nproc N CONFIG` "
                f"(which sets TF_CONFIG) or set TF_CONFIG on every host (see the kplug-distribute README)."
            )
        addresses, rank = found
        size = world_size()
        if size > 1 and size != len(addresses):
            raise kplug.ConfigError(
                f"TF_CONFIG lists {len(addresses)} tasks but WORLD_SIZE={size}: every launched process "
                f"must be one task of the cluster."
            )
        if communication not in self.IMPLEMENTATIONS:
            raise kplug.ConfigError(
                f"distribution.options.communication = {communication!r}: expected one of "
                f"{', '.join(self.IMPLEMENTATIONS)}."
            )
        implementations = tf.distribute.experimental.CommunicationImplementation
        implementation = getattr(implementations, communication.upper())
        options = tf.distribute.experimental.CommunicationOptions(
            implementation=implementation, timeout_seconds=timeout_seconds
        )
        self._strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        self.workers = addresses
        self.communication = communication
        self.rank = rank
        self.processes = len(addresses)
        self.replicas = self._strategy.num_replicas_in_sync

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with _multi_worker_reduction(), self._strategy.scope():
            yield

    def prepare_stage(self, model: keras.Model) -> None:
        model._maybe_symbolic_build = types.MethodType(_local_symbolic_build, model)
        synchronise_batchnorm(model, replica_sum)  # statistics over every worker's replicas

    def shard_batches(self, batches: Any) -> Any:
        """This worker's replicas' slices of every global batch, as a distributed dataset.

        Replica ``r`` (of ``replicas``, numbered worker by worker) keeps rows
        ``[r * n, (r + 1) * n)`` of each global batch of ``n * replicas`` rows. The dataset
        is handed to ``fit`` already distributed, so tf.distribute does not shard it again.
        """
        import tensorflow as tf

        local = self.replicas // self.processes
        shards = [ProcessShard(batches, self.rank * local + i, self.replicas) for i in range(local)]

        def spec(value: Any) -> Any:
            value = np.asarray(value)
            return tf.TensorSpec((None, *value.shape[1:]), tf.as_dtype(value.dtype))

        signature = tf.nest.map_structure(spec, shards[0][0])

        def generate() -> Iterator[Any]:
            index = 0
            while True:  # kplug's stream is endless; fit runs steps_per_epoch of it per epoch
                for shard in shards:  # tf.distribute hands a worker's elements to its replicas in turn
                    yield shard[index]
                index += 1

        def dataset(context: Any) -> Any:
            return tf.data.Dataset.from_generator(generate, output_signature=signature)

        return self._strategy.distribute_datasets_from_function(dataset)

    def describe(self, model: keras.Model | None = None) -> dict[str, Any]:
        import tensorflow as tf

        details = {
            "rank": self.rank,
            "workers": self.workers,
            "communication": self.communication,
            "devices": list(self._strategy.extended.worker_devices),
            "visible_devices": [d.name for d in tf.config.list_logical_devices()],
        }
        return describe_placement(self, model, details, _placement_table)


def offer_multi_worker() -> kplug.Distribution | None:
    """``auto`` on TensorFlow: multi-worker mirrored when TF_CONFIG names a cluster of several tasks."""
    found = read_tf_config()
    if found is None or len(found[0]) < 2:
        return None
    return MultiWorkerMirrored()
