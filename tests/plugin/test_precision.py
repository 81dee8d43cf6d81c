"""kplug.Precision: a precision factory may return one; the trainer calls it on the built model
and on every stage's optimizer, and report.json records every layer's dtypes."""

from __future__ import annotations

import keras
from conftest import blob_config

import kplug
from kplug.plugin.precision import Precision, as_precision


class Float32Dense1(Precision):
    """bfloat16 everywhere except the first dense layer; each optimizer wrapped in loss scaling."""

    def __init__(self) -> None:
        super().__init__("mixed_bfloat16")
        self.wrapped = 0

    def configure_model(self, model: keras.Model) -> None:
        model.get_layer("backbone").get_layer("dense1").dtype_policy = "float32"

    def wrap_optimizer(self, optimizer):
        self.wrapped += 1
        return keras.optimizers.LossScaleOptimizer(optimizer)

    def describe(self):
        return {"island": "backbone/dense1"}


def test_as_precision_wraps_a_policy_name():
    assert as_precision("mixed_bfloat16").name == "mixed_bfloat16"
    precision = Float32Dense1()
    assert as_precision(precision) is precision


def test_trainer_calls_the_precision_object(blobs):
    x, y = blobs
    precision = Float32Dense1()

    class Plugin:
        @staticmethod
        @kplug.hookimpl
        def kplug_register_precision_policies(register):
            register("island", lambda: precision)

    config = blob_config(x, y, precision={"policy": "island"})
    config["model"]["backbone"]["options"] = {"units": [16, 16]}
    config["train"] = {"stages": [{"epochs": 1}, {"epochs": 1}], "batch_size": 32, "verbose": 0}
    result = kplug.fit(config, plugins=kplug.load_plugins([Plugin()], entry_points=False))
    assert precision.wrapped == 2  # one optimizer per stage
    assert isinstance(result.model.optimizer, keras.optimizers.LossScaleOptimizer)
    report = result.report
    assert report["precision"] == "mixed_bfloat16"
    assert report["precision_settings"] == {"island": "backbone/dense1"}
    layers = report["layer_dtypes"]
    assert layers["backbone/dense1"] == {
        "class": "Dense",
        "policy": "float32",
        "compute": "float32",
        "variables": ["float32"],
    }
    assert layers["backbone/dense2"]["compute"] == "bfloat16"
    assert layers["backbone/dense2"]["variables"] == ["float32"]
    assert layers["heads/classification/logits"]["compute"] == "float32"
