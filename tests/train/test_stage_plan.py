"""StagePlan: every stage's settings resolved once; the trainer, its report and resume read the plans."""

from __future__ import annotations

import copy
import dataclasses

import keras
import numpy as np
import pytest
import yaml
from conftest import InterruptAt, blob_config

import kplug
from kplug.config.load import parse_config
from kplug.train import stage_plan
from kplug.train.stage_plan import plan_stages


def staged_config(x, y, old_form: bool):
    """Four stages touching every setting a plan resolves; ``old_form`` writes rates on the stage."""
    config = blob_config(x, y)
    config["model"]["backbone"]["options"] = {"units": [16, 8]}
    decayed = {"learning_rates": {"heads/*": 1e-3}, "layer_decay": 0.5}
    adamw = {"name": "adamw", "weight_decay": 0.01}
    if old_form:
        first = {"learning_rate": 3e-3}
        middle = {"learning_rate": 5e-4, "optimizer": adamw}
    else:
        first = {"optimizer": {"learning_rate": 3e-3}}
        middle = {"optimizer": {**adamw, "learning_rate": 5e-4}}
    config["train"] = {
        "verbose": 0,
        "batch_size": 32,
        "optimizer": {"learning_rate": 2e-3},
        "stages": [
            {"epochs": 1, "trainable": ["heads/*"], "batch_size": 16, **first},
            {"epochs": 1, **decayed, **middle},
            {"epochs": 1, "batch_size": 64, **decayed, **middle},  # same settings: state carries
            {
                "epochs": 1,
                "optimizer": {"name": "sgd", "momentum": 0.9, "gradient_accumulation_steps": 2},
                "optimizer_state": "reset",
                "schedule": {"name": "cosine", "warmup_steps": 2},
            },
        ],
    }
    return config


# report.json's stages of staged_config as written before StagePlan existed (kplug at ef436f5, jax)
RECORDED_STAGES = [
    {
        "stage": 1,
        "epochs": 1,
        "batch_size": 16,
        "trainable": ["heads/classification"],
        "optimizer": "adam",
        "learning_rate": 0.003,
        "optimizer_state": "fresh",
        "feature_cache": {"used": True},  # added with train.cache_features
        "trainable_parameters": 27,
    },
    {
        "stage": 2,
        "epochs": 1,
        "batch_size": 32,
        "trainable": ["backbone", "heads/classification"],
        "optimizer": "adamw",
        "learning_rate": 0.0005,
        "optimizer_state": "fresh",
        "learning_rates": {
            "backbone/dense1": 0.000125,
            "backbone/dense2": 0.00025,
            "heads/classification": 0.001,
        },
        "feature_cache": {
            "used": False,
            "reason": "backbone layers train or update state in this stage (backbone/dense1, backbone/dense2)",
        },
        "trainable_parameters": 307,
    },
    {
        "stage": 3,
        "epochs": 1,
        "batch_size": 64,
        "trainable": ["backbone", "heads/classification"],
        "optimizer": "adamw",
        "learning_rate": 0.0005,
        "optimizer_state": "carried for 6 variables",
        "learning_rates": {
            "backbone/dense1": 0.000125,
            "backbone/dense2": 0.00025,
            "heads/classification": 0.001,
        },
        "feature_cache": {
            "used": False,
            "reason": "backbone layers train or update state in this stage (backbone/dense1, backbone/dense2)",
        },
        "trainable_parameters": 307,
    },
    {
        "stage": 4,
        "epochs": 1,
        "batch_size": 32,
        "trainable": ["backbone", "heads/classification"],
        "optimizer": "sgd",
        "learning_rate": 0.002,
        "optimizer_state": "fresh",
        "feature_cache": {
            "used": False,
            "reason": "backbone layers train or update state in this stage (backbone/dense1, backbone/dense2)",
        },
        "trainable_parameters": 307,
    },
]


def weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_old_and_new_forms_train_alike_and_report_what_was_recorded(blobs, plugins):
    x, y = blobs
    old = kplug.fit(staged_config(x, y, old_form=True), plugins=plugins, output="runs/old")
    new = kplug.fit(staged_config(x, y, old_form=False), plugins=plugins, output="runs/new")
    assert old.report["stages"] == RECORDED_STAGES
    assert new.report["stages"] == RECORDED_STAGES
    for ours, theirs in zip(weights(old.model), weights(new.model), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_old_form_config_loads_to_the_same_plans_and_resolved_config(blobs):
    x, y = blobs
    old = parse_config(staged_config(x, y, old_form=True))
    new = parse_config(staged_config(x, y, old_form=False))
    assert plan_stages(old.train) == plan_stages(new.train)
    assert old.train.model_dump() == new.train.model_dump()
    assert "learning_rate" not in old.to_dict()["train"]["stages"][0]  # written only the new way


def test_plans_resolve_each_fallback(blobs):
    x, y = blobs
    plans = plan_stages(parse_config(staged_config(x, y, old_form=False)).train)
    assert [p.where for p in plans] == [f"train.stages[{i}]" for i in range(4)]
    assert [p.batch_size for p in plans] == [16, 32, 64, 32]
    assert [p.batch_size_where for p in plans] == [
        "train.stages[0].batch_size",
        "train.batch_size",
        "train.stages[2].batch_size",
        "train.batch_size",
    ]
    assert [p.learning_rate for p in plans] == [3e-3, 5e-4, 5e-4, 2e-3]
    assert [p.optimizer.name for p in plans] == ["adam", "adamw", "adamw", "sgd"]
    assert [p.accumulation for p in plans] == [1, 1, 1, 2]
    assert [p.schedule.name for p in plans] == ["constant", "constant", "constant", "cosine"]
    assert [dict(p.rates.per_layer) for p in plans] == [{}, {"heads/*": 1e-3}, {"heads/*": 1e-3}, {}]
    assert plans[0].trainable.trainable == ("heads/*",) and plans[1].trainable.trainable == "all"
    # 240 rows, 20% validation: 192 training rows; accumulation halves the updates
    assert [p.updates_per_epoch(192) for p in plans] == [12, 6, 3, 3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plans[0].batch_size = 8
    single = plan_stages(parse_config(blob_config(x, y)).train)
    assert [(p.where, p.epochs, p.batch_size_where) for p in single] == [("train", 3, "train.batch_size")]


def test_each_stage_is_planned_once_per_run(blobs, plugins, monkeypatch):
    x, y = blobs
    planned = []
    plan_stage = stage_plan.plan_stage

    def counting(train, index):
        planned.append(index)
        return plan_stage(train, index)

    monkeypatch.setattr(stage_plan, "plan_stage", counting)
    kplug.fit(staged_config(x, y, old_form=False), plugins=plugins)
    assert planned == [0, 1, 2, 3]


class RateLog(keras.callbacks.Callback):
    """Per ``fit`` call: the batches trained and the compiled optimizer's rate."""

    fits: list[dict] = []

    def on_train_begin(self, logs=None):
        RateLog.fits.append({"batches": 0})

    def on_train_batch_end(self, batch, logs=None):
        RateLog.fits[-1]["batches"] += 1

    def on_train_end(self, logs=None):
        rate = self.model.optimizer.learning_rate
        RateLog.fits[-1]["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class RateLogPlugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("rate-log", RateLog)


def test_the_trainer_trains_and_reports_from_its_plans(blobs):
    """A plan changed after the config was read is what runs: nothing re-reads the config."""
    x, y = blobs
    config = staged_config(x, y, old_form=False)
    config["callbacks"] = ["rate-log"]
    RateLog.fits = []
    plugins = kplug.load_plugins([RateLogPlugin()], entry_points=False)
    trainer = kplug.Trainer(config, plugins=plugins)
    first, second, *rest = trainer.stage_plans
    faster = second.optimizer.model_copy(update={"learning_rate": 7e-4})
    trainer.stage_plans = (
        dataclasses.replace(first, batch_size=48, epochs=2),
        dataclasses.replace(second, optimizer=faster),
        *rest,
    )
    stages = trainer.fit().report["stages"]
    assert [s["batch_size"] for s in stages] == [48, 32, 64, 32]
    assert [s["epochs"] for s in stages] == [2, 1, 1, 1]
    assert [s["learning_rate"] for s in stages] == [3e-3, 7e-4, 5e-4, 2e-3]
    assert stages[1]["learning_rates"]["backbone/dense2"] == pytest.approx(
        7e-4 * 0.5
    )  # top block: rate * decay
    assert stages[2]["optimizer_state"] == "fresh"  # the settings now differ from stage 2's
    # 192 training rows: 4 batches of 48 in each of 2 epochs, then 6, 3 and 6 (two per update)
    assert [fit["batches"] for fit in RateLog.fits] == [8, 6, 3, 6]
    assert [fit["learning_rate"] for fit in RateLog.fits[:3]] == pytest.approx([3e-3, 7e-4, 5e-4])


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_a_run_written_with_stage_learning_rates_resumes(blobs, tmp_path):
    """A run directory whose config.yaml has ``stages[].learning_rate`` (kplug before StagePlan)."""
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    config = staged_config(x, y, old_form=False)
    config["data"] = {"source": "npz", "options": {"path": "blobs.npz"}, "split": {"validation": 0.2}}
    config["train"]["stages"][1]["epochs"] = 2
    plugins = kplug.load_plugins([InterruptAt(2)], entry_points=False)  # checkpoint: mid stage 2
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(config, plugins=plugins)
    saved = tmp_path / "runs/blobs/config.yaml"
    written = yaml.safe_load(saved.read_text())
    for stage in written["train"]["stages"]:  # write the stages as the older kplug did
        rate = stage["optimizer"].pop("learning_rate")
        stage["learning_rate"] = rate
        if not any(value is not None for value in stage["optimizer"].values()):
            stage["optimizer"] = None
    assert written["train"]["stages"][0]["learning_rate"] == 3e-3
    saved.write_text(yaml.safe_dump(written, sort_keys=False))

    kplug.Trainer(copy.deepcopy(config), resume="runs/blobs")  # the same-run check passes
    result = kplug.fit(resume="runs/blobs", plugins=kplug.load_plugins(entry_points=False))
    assert [s["learning_rate"] for s in result.report["stages"]] == [3e-3, 5e-4, 5e-4, 2e-3]
    changed = copy.deepcopy(config)
    changed["train"]["stages"][1]["optimizer"]["learning_rate"] = 1e-4
    with pytest.raises(kplug.ConfigError, match=r"the config differs .*train.stages: "):
        kplug.Trainer(changed, resume="runs/blobs")
