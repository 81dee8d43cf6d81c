"""A Keras model object as the backbone and callback objects, from Python: runs that save, resume,
evaluate and predict from their directory."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import yaml
from conftest import InterruptAt

import kplug


def encoder():
    inputs = keras.Input((8,))
    return keras.Model(
        inputs, keras.layers.Dense(12, activation="relu", name="mine")(inputs), name="my_encoder"
    )


class EpochCount(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


def npz_config(tmp_path, blobs, backbone, callbacks=()):
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    return {
        "data": {
            "source": "npz",
            "options": {"path": str(tmp_path / "blobs.npz")},
            "split": {"validation": 0.2},
        },
        "model": {"backbone": backbone, "heads": [{"name": "classification"}]},
        "train": {
            "verbose": 0,
            "batch_size": 48,
            "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 2}],
        },
        "callbacks": list(callbacks),
        "output": {"dir": str(tmp_path / "run")},
    }


def test_a_keras_model_object_trains_as_the_backbone_and_the_run_dir_reloads_it(tmp_path, blobs):
    mine, counter = encoder(), EpochCount()
    before = [w.copy() for w in mine.get_weights()]
    result = kplug.fit(npz_config(tmp_path, blobs, mine, [counter, "terminate-on-nan"]))
    assert counter.epochs == 4  # the same callback object, every stage
    assert all(
        np.array_equal(a, b) for a, b in zip(before, mine.get_weights(), strict=True)
    )  # a copy trained
    trained = result.model.get_layer("backbone").get_layer("mine").kernel
    assert not np.allclose(keras.ops.convert_to_numpy(trained), before[0])
    saved = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert saved["model"]["backbone"]["name"] == "keras-file"
    assert saved["model"]["backbone"]["options"]["path"].endswith("backbone.keras")
    assert [c["name"] for c in saved["callbacks"]] == ["terminate-on-nan"]
    x, _ = blobs
    np.savez(tmp_path / "new.npz", x=x[:4])
    records = kplug.predict(result.run_dir, data=str(tmp_path / "new.npz"))
    assert len(records) == 4
    assert kplug.evaluate(result.run_dir, split="validation")["accuracy"] == pytest.approx(
        result.metrics["accuracy"]
    )


def test_a_run_with_a_python_backbone_resumes_from_its_directory_alone(tmp_path, blobs):
    spy = InterruptAt(3)  # mid stage 2
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(
            npz_config(tmp_path, blobs, encoder()), plugins=kplug.load_plugins([spy], entry_points=False)
        )
    resumed = kplug.fit(resume=tmp_path / "run")
    assert len(resumed.history["loss"]) == 4 and (tmp_path / "run" / "model.keras").is_file()


def test_a_backbone_whose_inputs_do_not_fit_the_data_is_named(tmp_path, blobs):
    inputs = keras.Input((5,))
    wrong = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="five_wide")
    with pytest.raises(
        kplug.ConfigError, match=r"'five_wide' takes inputs of shape \(5,\), but each example .* \(8,\)"
    ):
        kplug.fit(npz_config(tmp_path, blobs, wrong))
