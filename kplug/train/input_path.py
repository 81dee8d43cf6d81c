"""What one ``fit`` call reads: kplug's batch stream, or the same batches as a ``tf.data`` pipeline.

On tensorflow, ``Model.fit`` reads a ``keras.utils.PyDataset`` through a Python generator,
which loses what ``steps_per_execution`` and ``jit_compile`` gain with Keras' own array input.
When the training data are in-memory arrays, and no batch augmentation, gradient accumulation
or multi-replica distribution changes the batches, kplug gives ``fit`` a ``tf.data`` pipeline
over the same seeded per-epoch order instead (``kplug.backend.tf_batches``): the same batches in
the same order, the same mid-epoch resume.
"""

from __future__ import annotations

from typing import Any

import keras

from kplug.data.batches import TrainingBatches
from kplug.plugin.distribution import Distribution


def uses_tf_pipeline(batches: Any, distribution: Distribution, backend: str | None = None) -> bool:
    """Whether ``batches`` go to ``fit`` as a ``tf.data`` pipeline (``fit_input``)."""
    backend = backend or keras.backend.backend()
    return (
        backend == "tensorflow"
        and type(batches) is TrainingBatches  # arrays or cached features, not a stream
        and not batches.transforms
        and batches.accumulation == 1
        and distribution.processes == 1
        and distribution.replicas <= 1
    )


def fit_input(batches: Any, distribution: Distribution) -> Any:
    """The training input of one ``fit`` call: ``batches`` as this process's share
    (``Distribution.shard_batches``), or as a ``tf.data`` pipeline where ``uses_tf_pipeline``."""
    if not uses_tf_pipeline(batches, distribution):
        return distribution.shard_batches(batches)
    from kplug.backend.tf_batches import array_batches

    return array_batches(
        batches.x,
        batches.y,
        batches.batch_size,
        batches.seed,
        batches.first_epoch,
        batches.skip,
        batches.weights,
    )
