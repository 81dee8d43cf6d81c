"""kplug-vision through kplug: discovered by entry point, trains from an image folder, predicts."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from conftest import TINY_BACKBONES
from kplug.testing import TrainingBatches, build_batch_transforms
from test_datasets import write_folder


def test_entry_point_registers_every_component(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "vision")
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert {"resnet", "vit", "efficientnet", "mobilenetv3", "convnext", "keras-hub"} <= set(
        loaded.registry.names("backbone")
    )
    expected = {"flip", "rotation", "zoom", "crop", "contrast", "color-jitter", "erasing", "randaugment"}
    assert expected | {"mixup", "cutmix"} <= set(loaded.registry.names("augmentation"))
    assert loaded.registry.get("augmentation", "mixup").extras == {"batch": True}
    assert {"image-folder", "image-arrays"} <= set(loaded.registry.names("dataset"))
    assert loaded.registry.get("backbone", "resnet").provider.startswith("kplug-vision 0.1.0")


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_fine_tunes_from_an_image_folder_with_augmentation(
    plugins: kplug.Plugins, tmp_path: Path, digits
) -> None:
    write_folder(tmp_path / "digits", *digits, per_class=12)
    config = {
        "name": "folder",
        "seed": 1,
        "data": {
            "source": "image-folder",
            "options": {"path": str(tmp_path / "digits")},
            "split": {"validation": 0.25, "stratify": True},
        },
        "model": {
            "backbone": {"name": "resnet", "options": TINY_BACKBONES["resnet"]},
            "heads": [{"name": "classification"}],
        },
        "augment": [
            {"name": "crop", "options": {"scale": [0.8, 1.0], "probability": 0.5}},
            {"name": "rotation", "options": {"factor": 0.03}},
        ],
        "train": {"epochs": 2, "batch_size": 9, "verbose": 0, "optimizer": {"learning_rate": 0.003}},
        "output": {"dir": str(tmp_path / "run")},
    }
    result = kplug.fit(config, plugins=plugins)
    assert np.isfinite(result.history["loss"]).all()
    assert [layer.name for layer in result.model.get_layer("augment").layers] == ["crop_p", "rotation"]
    records = kplug.predict(result.run_dir, data=str(tmp_path / "digits"), plugins=plugins)
    assert len(records) == 36
    assert {r["label"] for r in records} <= {"d3", "d5", "d7"}  # one head: flat records
    # augmentation is off at inference: predicting again gives the same probabilities
    again = kplug.predict(result.run_dir, data=str(tmp_path / "digits"), plugins=plugins)
    np.testing.assert_array_equal([r["probabilities"] for r in records], [r["probabilities"] for r in again])


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
@pytest.mark.slow
def test_mixing_trains_with_soft_labels_and_label_smoothing(
    plugins: kplug.Plugins, tmp_path: Path, digits, name: str
) -> None:
    images, labels = digits
    config = {
        "name": name,
        "seed": 2,
        "data": {
            "source": "image-arrays",
            "options": {"x": images[:320], "y": labels[:320]},
            "split": {"validation": 0.25},
        },
        "model": {
            "backbone": {"name": "small-cnn", "options": {"filters": [8], "dense_units": 16}},
            "heads": [{"name": "classification"}],
        },
        "augment": [{"name": name, "options": {"alpha": 0.4, "probability": 0.8}}, {"name": "flip"}],
        "train": {
            "epochs": 6,
            "batch_size": 32,
            "verbose": 0,
            "label_smoothing": 0.1,
            "optimizer": {"learning_rate": 0.01},
        },
        "output": {"dir": str(tmp_path / "run")},
    }
    trainer = kplug.Trainer(config, plugins=plugins)
    result = trainer.fit()
    # it learns: held-out digits are recognised far above chance (0.1), the training loss falls
    assert result.metrics["split"] == "validation" and result.metrics["accuracy"] > 0.5
    assert result.history["loss"][-1] < result.history["loss"][0] - 0.5
    # the mixing happens in kplug's input pipeline, not in the model ...
    assert [layer.name for layer in result.model.get_layer("augment").layers] == ["flip"]
    # ... where training batches carry mixed images and soft labels that sum to one
    x, y = trainer.split_data("train")
    batches = TrainingBatches(x, y, 16, 2, 0, 0, 1, build_batch_transforms(trainer.run))
    mixed_x, soft = batches[0][:2]
    assert soft.shape == (16, 10) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-5)
    assert ((soft > 0) & (soft < 1)).any(axis=1).sum() >= 4
    assert mixed_x.shape == (16, 28, 28, 1)
    # the loss the model trained with reads those soft labels, smoothed
    compiled = result.model.evaluate(mixed_x, soft, verbose=0, return_dict=True)["loss"]
    logits = result.model.predict(mixed_x, verbose=0)

    def cross_entropy(smoothing: float) -> float:
        loss = keras.losses.categorical_crossentropy(
            soft, logits, from_logits=True, label_smoothing=smoothing
        )
        return float(np.mean(keras.ops.convert_to_numpy(loss)))

    assert compiled == pytest.approx(cross_entropy(0.1), rel=1e-4)
    assert abs(compiled - cross_entropy(0.0)) > 1e-2
