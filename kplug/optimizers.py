"""Build Keras optimizers and learning-rate schedules from the run config."""

from __future__ import annotations

from typing import Any

import keras

from kplug.config import OptimizerConfig, ScheduleConfig

# Variables whose names contain these are not weight-decayed (biases and normalisation).
NO_DECAY = ["bias", "gamma", "beta"]


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


@keras.saving.register_keras_serializable(package="kplug")
class OffsetSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A stage's schedule counted from the optimizer step at which the stage began.

    Used when a stage keeps the previous stage's optimizer state (and so its step count).
    """

    def __init__(self, schedule: Any, offset: int) -> None:
        self.schedule = schedule
        self.offset = offset

    def __call__(self, step):
        local = keras.ops.maximum(keras.ops.cast(step, "float32") - self.offset, 0.0)
        if isinstance(self.schedule, (int, float)):
            return keras.ops.cast(self.schedule, "float32") + 0.0 * local
        return self.schedule(local)

    def get_config(self) -> dict[str, Any]:
        schedule = self.schedule
        if not isinstance(schedule, (int, float)):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {"schedule": schedule, "offset": self.offset}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> OffsetSchedule:
        schedule = config["schedule"]
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        return cls(schedule, config["offset"])


def _slots(optimizer: keras.optimizers.Optimizer, model_variable: keras.Variable) -> dict[str, Any]:
    # Keras names a slot "<variable path with _>_<slot>", e.g. dense_kernel_momentum
    prefix = model_variable.path.replace("/", "_") + "_"
    return {v.name[len(prefix) :]: v for v in optimizer.variables if v.name.startswith(prefix)}


def carry_optimizer_state(
    previous: keras.optimizers.Optimizer, current: keras.optimizers.Optimizer, variables: list[keras.Variable]
) -> int:
    """Copy the step count and the slots (moments) of every variable both optimizers update.

    ``current`` must be built. Returns the number of variables whose state was carried.
    """
    # a wrapper (loss scaling, skipping non-finite steps) counts steps in its inner optimizer
    inner = getattr(current, "inner_optimizer", current)
    inner._iterations.assign(getattr(previous, "inner_optimizer", previous)._iterations)
    carried = 0
    for variable in variables:
        old, new = _slots(previous, variable), _slots(current, variable)
        if old and set(old) == set(new) and all(old[k].shape == new[k].shape for k in new):
            for name, slot in new.items():
                slot.assign(old[name])
            carried += 1
    return carried


def build_optimizer(config: OptimizerConfig, learning_rate: Any) -> keras.optimizers.Optimizer:
    """Create the configured optimizer with ``learning_rate`` (a float or a schedule)."""
    common: dict[str, Any] = {
        "learning_rate": learning_rate,
        "clipnorm": config.clipnorm,
        # Keras accumulates over 2 or more steps; 1 means no accumulation
        "gradient_accumulation_steps": config.gradient_accumulation_steps
        if (config.gradient_accumulation_steps or 1) > 1
        else None,
    }
    if config.name != "adamw" and config.weight_decay:
        common["weight_decay"] = config.weight_decay
    if config.name == "adam":
        return keras.optimizers.Adam(**common)
    if config.name == "adamw":
        optimizer = keras.optimizers.AdamW(
            weight_decay=0.01 if config.weight_decay is None else config.weight_decay, **common
        )
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
        return optimizer
    if config.name == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, **common)
    return keras.optimizers.RMSprop(momentum=config.momentum, **common)
