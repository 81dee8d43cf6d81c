"""Optimizers and learning-rate schedules from the config."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.config.optimizers import keras_optimizers
from kplug.config.schema import OptimizerConfig, OptimizerOverride, ScheduleConfig, merged_optimizer
from kplug.train.optimizers import build_optimizer, learning_rate_schedule


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


@pytest.mark.parametrize("name", sorted(keras_optimizers()))
def test_every_keras_optimizer_builds_and_updates_a_layer(name):
    optimizer = build_optimizer(OptimizerConfig(name=name, clipnorm=1.0), 0.01)
    assert isinstance(optimizer, keras_optimizers()[name])
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(0.01)
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    before = keras.ops.convert_to_numpy(layer.kernel)
    optimizer.apply([keras.ops.ones(v.shape) for v in layer.trainable_variables], layer.trainable_variables)
    assert not np.allclose(keras.ops.convert_to_numpy(layer.kernel), before)


def test_the_optimizers_own_options_reach_keras():
    sgd = build_optimizer(OptimizerConfig(name="sgd", momentum=0.9, options={"nesterov": True}), 0.1)
    assert (sgd.momentum, sgd.nesterov) == (0.9, True)
    adam = build_optimizer(OptimizerConfig(name="adam", options={"beta_1": 0.8, "epsilon": 1e-6}), 0.1)
    assert (adam.beta_1, adam.epsilon) == (0.8, 1e-6)


def test_a_stage_that_switches_optimizer_drops_the_base_options_and_momentum():
    base = OptimizerConfig(name="sgd", momentum=0.9, options={"nesterov": True})
    assert merged_optimizer(base, OptimizerOverride(learning_rate=0.1)).options == {"nesterov": True}
    switched = merged_optimizer(base, OptimizerOverride(name="lion"))
    assert (switched.name, switched.options, switched.momentum) == ("lion", {}, 0.0)
    given = merged_optimizer(base, OptimizerOverride(name="adam", options={"amsgrad": True}))
    assert given.options == {"amsgrad": True}


def test_a_run_trains_with_any_keras_optimizer_by_name(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {
        "verbose": 0,
        "stages": [
            {"epochs": 1, "optimizer": {"name": "lion", "learning_rate": 1e-3}},
            {"epochs": 1, "optimizer": {"name": "adafactor", "learning_rate": 1e-2}},
        ],
    }
    result = kplug.fit(config)
    assert isinstance(result.model.optimizer, keras.optimizers.Adafactor)
    assert [stage["optimizer"] for stage in result.report["stages"]] == ["lion", "adafactor"]


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


class StageLog(keras.callbacks.Callback):
    """Per ``fit`` call (stage): the learning rate at each epoch end and the updates made by its end."""

    stages: list[dict] = []

    def on_train_begin(self, logs=None):
        StageLog.stages.append({"rates": []})

    def on_epoch_end(self, epoch, logs=None):
        rate = keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        StageLog.stages[-1]["rates"].append(float(rate))

    def on_train_end(self, logs=None):
        StageLog.stages[-1]["updates"] = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))


class StageLogPlugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("stage-log", StageLog)


PEAK, FINAL = 0.01, 0.1


def expected_rate(name, update, warmup, total):
    """The rate after ``update`` optimizer updates of a stage of ``total``, computed by hand."""
    decay = total - warmup
    if update < warmup:  # kplug's linear warmup reaches the peak at its last step, Keras' cosine after it
        return PEAK * ((update + 1) if name == "linear" else update) / warmup
    progress = min(update - warmup, decay) / decay
    if name == "linear":
        return PEAK + (PEAK * FINAL - PEAK) * progress
    return PEAK * ((1 - FINAL) * 0.5 * (1 + math.cos(math.pi * progress)) + FINAL)


def scheduled_run(x, y, run, schedule, **train):
    """Train with a recorded learning rate; the stages' logs, the report and the final weights."""
    config = blob_config(x, y)  # 192 training rows
    config["train"] = {"verbose": 0, "optimizer": {"learning_rate": PEAK}, "schedule": schedule, **train}
    config["callbacks"] = [{"name": "stage-log"}]
    config["output"] = {"dir": f"runs/{run}", "checkpoint_every": 0}
    StageLog.stages = []
    result = kplug.fit(config, plugins=kplug.load_plugins([StageLogPlugin()], entry_points=False))
    weights = [keras.ops.convert_to_numpy(w) for w in result.model.weights]
    return StageLog.stages, result.report["stages"], weights


def assert_same_weights(ours, theirs):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize(
    ("name", "on_nonfinite"), [("linear", "stop"), ("cosine", "skip_batch")], ids=["linear", "cosine-wrapped"]
)
def test_schedule_counts_optimizer_updates_under_gradient_accumulation(blobs, name, on_nonfinite):
    """4 micro-batches of 16 per update follow the schedule of batches of 64: warmup and decay
    are counted in updates (3 per epoch), not in micro-batches; also inside skip_batch's wrapper."""
    x, y = blobs
    schedule = {"name": name, "warmup_steps": 5, "final_fraction": FINAL}
    accumulated = {"batch_size": 16, "optimizer": {"learning_rate": PEAK, "gradient_accumulation_steps": 4}}
    train = {"epochs": 4, "on_nonfinite": on_nonfinite}
    logs, _, weights = scheduled_run(x, y, "accumulated", schedule, **train, **accumulated)
    whole_logs, _, whole_weights = scheduled_run(x, y, "whole", schedule, **train, batch_size=64)
    expected = [expected_rate(name, 3 * epoch, warmup=5, total=12) for epoch in (1, 2, 3, 4)]
    for stages in (logs, whole_logs):
        np.testing.assert_allclose(stages[0]["rates"], expected, rtol=1e-5)
        assert stages[0]["updates"] == 12
    assert_same_weights(weights, whole_weights)


@pytest.mark.parametrize(
    ("first", "second"),
    [((1, 32), (4, 16)), ((4, 16), (1, 32))],
    ids=["then-accumulate", "then-stop-accumulating"],
)
def test_carried_state_counts_updates_when_accumulation_changes(blobs, first, second):
    """A stage that carries the optimizer state across a change of gradient_accumulation_steps
    continues like the same run without accumulation: the moments, Adam's update count and the
    stage's schedule (counted from the stage's first update) carry over in updates."""
    x, y = blobs
    schedule = {"name": "linear", "warmup_steps": 2, "final_fraction": FINAL}

    def stages(*settings):
        return [
            {
                "epochs": epochs,
                "batch_size": batch_size,
                "optimizer": {"gradient_accumulation_steps": steps},
                "optimizer_state": "carry",
            }
            for epochs, (steps, batch_size) in zip((1, 2), settings, strict=True)
        ]

    plain = [(1, steps * batch_size) for steps, batch_size in (first, second)]
    logs, report, weights = scheduled_run(x, y, "accumulated", schedule, stages=stages(first, second))
    plain_logs, plain_report, plain_weights = scheduled_run(x, y, "plain", schedule, stages=stages(*plain))
    per_epoch = [192 // (steps * batch_size) for steps, batch_size in (first, second)]
    expected_updates = [per_epoch[0], per_epoch[0] + 2 * per_epoch[1]]
    for stages_log, stage_report in ((logs, report), (plain_logs, plain_report)):
        assert [s["updates"] for s in stages_log] == expected_updates
        assert [s["optimizer_state"] for s in stage_report] == ["fresh", "carried for 4 variables"]
        np.testing.assert_allclose(
            stages_log[1]["rates"],
            [expected_rate("linear", per_epoch[1] * e, warmup=2, total=2 * per_epoch[1]) for e in (1, 2)],
            rtol=1e-5,
        )
    assert_same_weights(weights, plain_weights)


def test_a_carried_stage_keeps_a_constant_rate_that_callbacks_can_set(blobs):
    """A constant rate stays a variable when the stage carries state, so reduce-lr-on-plateau can lower it
    (a schedule would make Keras refuse the new rate)."""
    x, y = blobs
    plateau = {"monitor": "loss", "patience": 0, "factor": 0.5}  # a rate of 1e-7 leaves the loss flat
    config = blob_config(x, y)
    config["train"] = {
        "verbose": 0,
        "optimizer": {"learning_rate": 1e-7},
        "stages": [{"epochs": 1}, {"epochs": 2}],  # same settings and variables: the state carries
    }
    config["callbacks"] = [{"name": "reduce-lr-on-plateau", "options": plateau}, {"name": "stage-log"}]
    StageLog.stages = []
    result = kplug.fit(config, plugins=kplug.load_plugins([StageLogPlugin()], entry_points=False))
    assert result.report["stages"][1]["optimizer_state"] == "carried for 4 variables"
    assert [s["rates"] for s in StageLog.stages] == [pytest.approx([1e-7]), pytest.approx([1e-7, 5e-8])]
