"""Built-in callbacks: Keras' own early stopping, plateau schedule and NaN guard."""

from __future__ import annotations

from typing import Any

import keras

from kplug.config.schema import PYTHON_CALLBACK
from kplug.errors import ConfigError
from kplug.plugin.manager import hookimpl


def early_stopping(
    monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0, restore_best_weights: bool = True
) -> keras.callbacks.Callback:
    """Stop a stage when the monitored metric stops improving."""
    return keras.callbacks.EarlyStopping(
        monitor=monitor, patience=patience, min_delta=min_delta, restore_best_weights=restore_best_weights
    )


def reduce_lr_on_plateau(
    monitor: str = "val_loss", factor: float = 0.5, patience: int = 2, min_lr: float = 0.0
) -> keras.callbacks.Callback:
    """Lower the learning rate when the monitored metric plateaus."""
    return keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=factor, patience=patience, min_lr=min_lr)


def terminate_on_nan() -> keras.callbacks.Callback:
    """Stop training as soon as the loss becomes NaN or infinite."""
    return keras.callbacks.TerminateOnNaN()


def keras_callback(callback: Any) -> keras.callbacks.Callback:
    """A ``keras.callbacks.Callback`` object given from Python in ``callbacks`` (the same object every stage).

    It is not saved with the run: a run resumed from its directory alone runs without it.
    """
    if not isinstance(callback, keras.callbacks.Callback):
        raise ConfigError(
            f"callbacks: expected a keras.callbacks.Callback object, got {type(callback).__name__}."
        )
    return callback


@hookimpl
def kplug_register_callbacks(register):
    """Register the built-in callbacks."""
    register("early-stopping", early_stopping)
    register("reduce-lr-on-plateau", reduce_lr_on_plateau)
    register("terminate-on-nan", terminate_on_nan)
    register(PYTHON_CALLBACK, keras_callback)
