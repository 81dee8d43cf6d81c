"""A non-finite training loss: stop with a message naming where (``train.on_nonfinite: stop``, the
default), or skip that batch's update (``skip_batch``).

``stop``: ``NonFiniteLossGuard`` reads the loss Keras logs after each batch (a running mean
over the epoch, so it turns nan/inf at the first bad batch) and raises ``TrainingError``
naming the epoch, the batch and the last checkpoint written before it. It is dispatched
like Keras' own asynchronous callbacks, so it adds no device sync to the train step; when no
other callback needs synchronous batch hooks, Keras runs it on a thread pool, so the batch it
names can be a few after the first non-finite one (whose loss was inf where this one's is nan).
Either way training stops within the epoch, before that epoch's checkpoint.

``skip_batch``: ``SkipNonFiniteOptimizer`` wraps the stage's optimizer inside the compiled
train step: when the loss or any gradient is not finite, the update is not applied (the
weights and optimizer state stay as they were) and a counter variable goes up; the stage
report gives the count. The mean training loss Keras logs for that epoch is then nan.

A loss-scale optimizer (float16) already skips steps whose *scaled* gradients overflow
and lowers the scale; that is not an error here, since both modes look at the unscaled
loss. Under float16 loss scaling, ``skip_batch`` leaves the skipping to it (not counted).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
from keras import ops

from kplug.errors import TrainingError
from kplug.train.checkpoint import TrainingState, batches_done, complete_checkpoints
from kplug.train.rundir import CHECKPOINT_DIR


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raise ``TrainingError`` at the first batch whose training loss is nan or infinite.

    Args:
        run_dir: the run directory (to name the last checkpoint).
        state: where the ``fit`` call starts (stage, epoch, batch).
        first_batch: batches of the first epoch trained before this ``fit`` (a mid-epoch resume).
    """

    async_safe = True  # only reads logs and raises: Keras may run it off the training thread

    def __init__(self, run_dir: Path, state: TrainingState, first_batch: int = 0) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.state = state
        self.first_batch = first_batch
        self._epoch = state.epoch

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        done = batches_done(self.state, self.first_batch, self._epoch, batch + 1)
        raise TrainingError(nonfinite_message(self.run_dir, float(loss), self.state.stage, self._epoch, done))


def nonfinite_message(run_dir: Path, loss: float, stage: int, epoch: int, batch: int) -> str:
    """Where the loss went non-finite, the last good checkpoint and what to do."""
    found = complete_checkpoints(run_dir / CHECKPOINT_DIR)
    last = (
        f"The last good checkpoint is {found[-1]} (kplug train --resume {run_dir} continues from it "
        f"and meets the same batch again)"
        if found
        else "No checkpoint was written before it"
    )
    return (
        f"The training loss became {loss} at epoch {epoch + 1}, batch {batch} (stage {stage + 1}); "
        f"training stopped before anything after it was saved. {last}. Lower the learning rate, set "
        f"train.optimizer.clipnorm, look for inf/nan values in the data, or set train.on_nonfinite: "
        f"skip_batch to skip the update of such batches."
    )


@keras.saving.register_keras_serializable(package="kplug")
class SkipNonFiniteOptimizer(keras.optimizers.LossScaleOptimizer):
    """Apply the inner optimizer's update only when the loss and every gradient are finite.

    Built on ``LossScaleOptimizer``'s skip-the-step machinery (stateless on jax, a
    ``cond`` on tensorflow and torch, distribution-aware on tensorflow) with the loss
    scale left out: the loss is multiplied by exactly 1, or by nan when it is not finite
    so that every gradient is nan and the step is skipped.

    Attributes:
        skipped: an int variable counting the skipped updates (saved with the optimizer).
    """

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, name: str | None = None, **kwargs: Any):
        super().__init__(inner_optimizer, initial_scale=1.0, name=name, **kwargs)

    def build(self, var_list: list[keras.Variable]) -> None:
        super().build(var_list)
        self.skipped = self.add_variable(
            shape=(), dtype="int", initializer="zeros", aggregation="none", name="skipped_updates"
        )

    def scale_loss(self, loss: Any) -> Any:
        guard = ops.where(ops.isfinite(loss), ops.ones_like(loss), ops.full_like(loss, float("nan")))
        return self.inner_optimizer.scale_loss(loss * ops.stop_gradient(guard))

    def _stateless_handle_finite_grads(self, optimizer_variables, grads, trainable_variables):
        own = list(optimizer_variables[: len(self._variables)])
        mapping = list(zip(self.variables, optimizer_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            new_trainable, new_inner = self.inner_optimizer.stateless_apply(
                self.inner_optimizer.variables, grads, trainable_variables
            )
        return new_trainable, own + list(new_inner)

    def _stateless_handle_non_finite_grads(self, optimizer_variables, trainable_variables):
        mapping = list(zip(self.variables, optimizer_variables, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            self.skipped.assign_add(1)
        return trainable_variables, [scope.get_current_value(v) for v in self.variables]

    def _stateful_handle_finite_grads(self, grads, trainable_variables):
        self.inner_optimizer.apply(grads, trainable_variables=trainable_variables)

    def _stateful_handle_non_finite_grads(self):
        self.skipped.assign_add(1)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> SkipNonFiniteOptimizer:
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)


def guard_optimizer(optimizer: keras.optimizers.Optimizer, on_nonfinite: str) -> keras.optimizers.Optimizer:
    """The optimizer a stage compiles with under ``train.on_nonfinite``.

    ``skip_batch`` wraps it in ``SkipNonFiniteOptimizer``, unless float16 loss scaling
    already skips non-finite steps (a ``LossScaleOptimizer``, or the ``mixed_float16``
    policy, for which Keras adds one).
    """
    if on_nonfinite != "skip_batch" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    if keras.config.dtype_policy().name == "mixed_float16":
        return optimizer
    return SkipNonFiniteOptimizer(optimizer)


def skipped_updates(optimizer: Any) -> dict[str, int]:
    """``{"skipped_batches": n}`` for a stage report when the optimizer counts skipped updates."""
    if not isinstance(optimizer, SkipNonFiniteOptimizer) or not optimizer.built:
        return {}
    return {"skipped_batches": int(keras.ops.convert_to_numpy(optimizer.skipped))}
