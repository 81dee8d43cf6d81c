"""Build Keras optimizers and learning-rate schedules from the run config."""

from __future__ import annotations

from typing import Any

import keras

from kplug.config.optimizers import keras_optimizers
from kplug.config.schema import OptimizerConfig, ScheduleConfig

# Variables whose names contain these are not weight-decayed (biases and normalisation).
NO_DECAY = ["bias", "gamma", "beta"]

# The slot in which Keras sums the gradients of an accumulation window.
ACCUMULATOR = "gradient_accumulator"


def learning_rate_schedule(schedule: ScheduleConfig, learning_rate: float, total_steps: int) -> Any:
    """A float (constant) or a Keras schedule with optional linear warmup."""
    if schedule.name == "constant" and not schedule.warmup_steps:
        return learning_rate
    warmup = min(schedule.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    if schedule.name == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else learning_rate,
            decay_steps=decay_steps,
            alpha=schedule.final_fraction,
            warmup_target=learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    end = learning_rate * (schedule.final_fraction if schedule.name == "linear" else 1.0)
    return WarmupPolynomialDecay(learning_rate, end, warmup, decay_steps)


@keras.saving.register_keras_serializable(package="kplug")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to ``peak``, then linear decay to ``end`` over ``decay_steps``."""

    def __init__(self, peak: float, end: float, warmup_steps: int, decay_steps: int) -> None:
        self.peak = peak
        self.end = end
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        decayed = self.peak + (self.end - self.peak) * progress
        return keras.ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "end": self.end,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
        }


def stage_schedule(rate: Any, accumulation: int = 1, offset: int = 0) -> Any:
    """``rate`` (a float or a schedule sized in optimizer updates) as the stage's optimizer evaluates it.

    Keras calls a schedule with the optimizer's micro-batch counter, which advances
    ``accumulation`` times per update under gradient accumulation, and a stage that carries
    the previous stage's optimizer state starts ``offset`` updates in. A constant rate stays a
    float (a variable that callbacks such as reduce-lr-on-plateau can set).
    """
    if isinstance(rate, (int, float)) or (accumulation == 1 and not offset):
        return rate
    return OffsetSchedule(rate, offset, accumulation)


@keras.saving.register_keras_serializable(package="kplug")
class OffsetSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A stage's schedule evaluated at the stage's optimizer update, counted from its first update.

    Keras passes the schedule the optimizer's micro-batch counter (``_iterations``); with
    ``accumulation`` micro-batches per update, update ``u`` is applied at micro-batch
    ``u * accumulation + accumulation - 1``, so ``step // accumulation`` is ``u``, the same
    number Keras' ``optimizer.iterations`` and Adam's bias correction use. ``offset`` is the
    number of updates made before the stage began (carried optimizer state).

    Args:
        schedule: a schedule sized in optimizer updates (or a float, from older run files).
        offset: updates made before the stage began.
        accumulation: micro-batches per update (``gradient_accumulation_steps``).
    """

    def __init__(self, schedule: Any, offset: int, accumulation: int = 1) -> None:
        self.schedule = schedule
        self.offset = offset
        self.accumulation = accumulation

    def __call__(self, step):
        updates = keras.ops.floor_divide(keras.ops.cast(step, "int32"), self.accumulation)
        local = keras.ops.maximum(keras.ops.cast(updates, "float32") - self.offset, 0.0)
        if isinstance(self.schedule, (int, float)):
            return keras.ops.cast(self.schedule, "float32") + 0.0 * local
        return self.schedule(local)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if not isinstance(schedule, (int, float)):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "offset": self.offset, "accumulation": self.accumulation}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OffsetSchedule:
        schedule = config["schedule"]
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        return cls(schedule, config["offset"], config.get("accumulation", 1))


def _slots(optimizer: keras.optimizers.Optimizer, model_variable: keras.Variable) -> dict[str, Any]:
    # Keras names a slot "<variable path with _>_<slot>", e.g. dense_kernel_momentum
    prefix = model_variable.path.replace("/", "_") + "_"
    slots = {v.name[len(prefix) :]: v for v in optimizer.variables if v.name.startswith(prefix)}
    slots.pop(ACCUMULATOR, None)  # gradients of an unfinished window, not state
    return slots


def _accumulation(optimizer: keras.optimizers.Optimizer) -> int:
    return optimizer.gradient_accumulation_steps or 1


def carry_optimizer_state(
    previous: keras.optimizers.Optimizer, current: keras.optimizers.Optimizer, variables: list[keras.Variable]
) -> int:
    """Copy the update count and the slots (moments) of every variable both optimizers update.

    The update count carries over in updates, not micro-batches: ``current`` starts at the
    first micro-batch of an accumulation window, whatever either optimizer's
    ``gradient_accumulation_steps``, and its bias correction sees the updates made so far.
    Gradient accumulators are not carried (a stage starts with a fresh window).

    ``current`` must be built. Returns the number of variables whose state was carried.
    """
    # a wrapper (loss scaling, skipping non-finite steps) counts steps in its inner optimizer
    old_inner = getattr(previous, "inner_optimizer", previous)
    inner = getattr(current, "inner_optimizer", current)
    updates = keras.ops.floor_divide(old_inner._iterations, _accumulation(old_inner))
    inner._iterations.assign(keras.ops.cast(updates * _accumulation(inner), inner._iterations.dtype))
    carried = 0
    for variable in variables:
        old, new = _slots(previous, variable), _slots(current, variable)
        if old and set(old) == set(new) and all(old[k].shape == new[k].shape for k in new):
            for name, slot in new.items():
                slot.assign(old[name])
            carried += 1
    return carried


def build_optimizer(config: OptimizerConfig, learning_rate: Any) -> keras.optimizers.Optimizer:
    """Create the configured Keras optimizer with ``learning_rate`` (a float or a schedule).

    Any ``keras.optimizers`` class by name, with ``config.options`` as its own arguments.
    AdamW decays weights by 0.01 unless ``weight_decay`` says otherwise, and leaves biases and
    normalisation scales alone (``NO_DECAY``).
    """
    optimizer_class = keras_optimizers()[config.name]
    arguments: dict[str, Any] = {
        **config.options,
        "learning_rate": learning_rate,
        "clipnorm": config.clipnorm,
        # Keras accumulates over 2 or more steps; 1 means no accumulation
        "gradient_accumulation_steps": config.gradient_accumulation_steps
        if (config.gradient_accumulation_steps or 1) > 1
        else None,
    }
    weight_decay = 0.01 if config.name == "adamw" and config.weight_decay is None else config.weight_decay
    if weight_decay:
        arguments["weight_decay"] = weight_decay
    if config.momentum:
        arguments["momentum"] = config.momentum
    optimizer = optimizer_class(**arguments)
    if config.name == "adamw":
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
