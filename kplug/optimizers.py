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


def build_optimizer(config: OptimizerConfig, learning_rate: Any) -> keras.optimizers.Optimizer:
    """Create the configured optimizer with ``learning_rate`` (a float or a schedule)."""
    common: dict[str, Any] = {
        "learning_rate": learning_rate,
        "clipnorm": config.clipnorm,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
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
