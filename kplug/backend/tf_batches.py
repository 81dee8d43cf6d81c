"""kplug's seeded training batches as a ``tf.data`` pipeline, for in-memory arrays on tensorflow.

``Model.fit`` reads a ``keras.utils.PyDataset`` on tensorflow through a Python generator, one
call per batch, which ``steps_per_execution`` and XLA cannot run ahead of. This pipeline yields
the same batches in the same order as ``kplug.data.batches.TrainingBatches`` (epoch ``e`` visits
the examples in ``epoch_order(seed, e)``, the first ``skip`` batches of the first epoch left
out), but gathers and batches them inside ``tf.data``: Python runs once per epoch, to draw the
epoch's permutation with numpy exactly as ``TrainingBatches`` does.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import tensorflow as tf

from kplug.data.batches import epoch_order, num_rows


def _tensors(data: Any) -> Any:
    """An array, or a dict of arrays, as tensors (gathered from inside the pipeline)."""
    if isinstance(data, dict):
        return {key: tf.convert_to_tensor(value) for key, value in data.items()}
    return tf.convert_to_tensor(data)


def _gather(data: Any, indices: tf.Tensor) -> Any:
    if isinstance(data, dict):
        return {key: tf.gather(value, indices) for key, value in data.items()}
    return tf.gather(data, indices)


def array_batches(
    x: Any,
    y: Any,
    batch_size: int,
    seed: int,
    first_epoch: int = 0,
    skip_batches: int = 0,
    weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """An endless ``tf.data.Dataset`` of ``(x, y)`` (or ``(x, y, weight)``) batches in kplug's order.

    Element ``i`` is batch ``(skip_batches + i) % B`` of epoch ``first_epoch + (skip_batches + i)
    // B`` with ``B = ceil(rows / batch_size)``: the batches ``TrainingBatches`` yields without
    gradient accumulation and batch augmentations (the trainer uses this only then).

    Args:
        x: model inputs (an array, or a dict of arrays by input name).
        y: targets (an array, or a dict of arrays by head id).
        batch_size: examples per batch (the last batch of an epoch holds the rest).
        seed: the run's seed.
        first_epoch: the overall index of the epoch the stream starts in.
        skip_batches: batches of the first epoch already trained (a mid-epoch resume).
        weights: each example's loss weight, or ``None``.
    """
    size = num_rows(x)
    full = size // batch_size

    def orders():
        for epoch in itertools.count(first_epoch):
            yield epoch_order(seed, epoch, size)

    def epoch_batches(order: tf.Tensor) -> tf.data.Dataset:
        batches = tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[: full * batch_size], [full, batch_size])
        )
        if size % batch_size:
            batches = batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size :]))
        return batches

    inputs, targets = _tensors(x), _tensors(y)
    example_weights = None if weights is None else tf.constant(weights, dtype=tf.float32)

    def gather(indices: tf.Tensor) -> tuple[Any, ...]:
        batch = (_gather(inputs, indices), _gather(targets, indices))
        if example_weights is None:
            return batch
        return (*batch, tf.gather(example_weights, indices))

    signature = tf.TensorSpec([size], tf.int64)
    indices = tf.data.Dataset.from_generator(orders, output_signature=signature).flat_map(epoch_batches)
    return (
        indices.skip(skip_batches).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    )
