"""BatchNormalization statistics over the global batch, not each replica's slice of it.

In training, ``keras.layers.BatchNormalization`` normalises with the mean and variance
of the batch it sees and folds them into its moving averages. Under data parallelism
each replica sees only its slice of the global batch, so unless the statistics are
combined, every replica normalises with different statistics than a single device
would, the gradients no longer equal the single-device ones, and each replica keeps
its own moving averages (rank 0's are the ones saved).

What each strategy does:

- ``data-parallel`` and ``model-parallel`` (jax): nothing to do. ``keras.distribution``
  runs one program over the global batch, sharded over the devices; the mean over the
  batch axis is an all-reduce XLA inserts, so the statistics are already global.
- ``mirrored`` and ``multi-worker-mirrored`` (tensorflow) and ``ddp`` (torch): every replica
  runs its own copy of the step on its slice. ``synchronise_batchnorm`` gives each
  BatchNormalization layer moments summed over the replicas (one all-reduce of the
  per-channel sum, sum of squares and count per layer and step), differentiable like
  ``torch.nn.SyncBatchNorm`` and Keras' ``synchronized=True`` (which Keras offers only on
  TensorFlow and which would be saved in the layer's config, so a model trained on
  TensorFlow could not be loaded on another backend).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import keras
from keras import ops
from kplug.plugin import iter_layers

# what report.json records under distribution.batchnorm_statistics when a model has BatchNormalization
GLOBAL = "global batch"

# sum over the replicas of a tensor each replica holds; the identity outside a group of replicas
AllReduce = Callable[[Any], Any]


def global_moments(
    layer: keras.layers.BatchNormalization, inputs: Any, mask: Any, all_reduce: AllReduce
) -> tuple[Any, Any]:
    """``layer``'s batch mean and variance over every replica's inputs, each of shape ``(channels,)``.

    Args:
        layer: the BatchNormalization layer (its ``axis`` and reduction axes are used).
        inputs: this replica's inputs to the layer.
        mask: this replica's mask (the inputs' shape without the channel axis), or ``None``.
        all_reduce: sums this replica's ``(3, channels)`` sums, sums of squares and counts
            over the replicas.
    """
    axes = layer._reduction_axes
    if mask is None:
        count = ops.sum(ops.ones_like(ops.take(inputs, 0, axis=layer.axis)))  # values per channel
    else:  # masked positions count for nothing, as in Keras' own masked moments
        weights = ops.cast(ops.broadcast_to(ops.expand_dims(mask, -1), ops.shape(inputs)), inputs.dtype)
        inputs = inputs * weights
        count = ops.sum(ops.take(weights, 0, axis=layer.axis))
    local_sum = ops.sum(inputs, axis=axes)
    local = ops.stack([local_sum, ops.sum(ops.square(inputs), axis=axes), ops.ones_like(local_sum) * count])
    total_sum, total_squares, total_count = ops.unstack(all_reduce(local), 3)
    mean = total_sum / total_count
    # E[x^2] - E[x]^2, as Keras' own torch and synchronised TensorFlow moments compute it
    variance = ops.maximum(total_squares / total_count - ops.square(mean), 0.0)
    return mean, variance


def synchronise_batchnorm(model: keras.Model, all_reduce: AllReduce) -> list[str]:
    """Make every BatchNormalization layer of ``model`` train on global-batch statistics.

    Only the layer instances change (their ``_moments``), not their config: a saved model
    loads anywhere as plain BatchNormalization. Calling it again replaces the reduction.

    Args:
        model: the model to train.
        all_reduce: sums a tensor over the replicas, differentiably (its gradient is the
            sum of the replicas' gradients).

    Returns:
        The paths of the layers changed.
    """

    def moments(layer: keras.layers.BatchNormalization, inputs: Any, mask: Any = None) -> Any:
        return global_moments(layer, inputs, mask, all_reduce)

    changed = []
    for path, layer in iter_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer._moments = types.MethodType(moments, layer)
            changed.append(path)
    return changed


def has_batchnorm(model: keras.Model | None) -> bool:
    """Whether ``model`` has a BatchNormalization layer (``report.json`` then says how it was trained)."""
    return model is not None and any(
        isinstance(layer, keras.layers.BatchNormalization) for _, layer in iter_layers(model)
    )
