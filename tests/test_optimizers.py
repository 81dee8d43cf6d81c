"""Optimizers and learning-rate schedules from the config."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug.config import OptimizerConfig, ScheduleConfig
from kplug.optimizers import build_optimizer, learning_rate_schedule


def rate(schedule, step):
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_constant_rate_is_a_plain_float():
    assert learning_rate_schedule(ScheduleConfig(), 0.1, 100) == 0.1


@pytest.mark.parametrize("name", ["cosine", "linear"])
def test_warmup_then_decay(name):
    schedule = learning_rate_schedule(
        ScheduleConfig(name=name, warmup_steps=10, final_fraction=0.1), 1.0, 110
    )
    assert rate(schedule, 0) < 0.2
    assert rate(schedule, 10) == pytest.approx(1.0, abs=1e-6)
    assert rate(schedule, 60) < 1.0
    assert rate(schedule, 110) == pytest.approx(0.1, abs=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_builds(name):
    optimizer = build_optimizer(OptimizerConfig(name=name, clipnorm=1.0), 0.01)
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.01)


def test_adamw_does_not_decay_biases():
    layer = keras.layers.Dense(2, bias_initializer="ones")
    layer.build((None, 3))
    optimizer = build_optimizer(OptimizerConfig(name="adamw", weight_decay=0.5, learning_rate=0.1), 0.1)
    kernel, bias = (keras.ops.convert_to_numpy(v) for v in layer.trainable_variables)
    zeros = [keras.ops.zeros(v.shape) for v in layer.trainable_variables]
    optimizer.apply(zeros, layer.trainable_variables)
    new_kernel, new_bias = (keras.ops.convert_to_numpy(v) for v in layer.trainable_variables)
    np.testing.assert_allclose(new_kernel, kernel * (1 - 0.1 * 0.5), rtol=1e-6)
    np.testing.assert_array_equal(new_bias, bias)
