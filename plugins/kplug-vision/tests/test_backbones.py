"""Every backbone family builds small, trains a step, attaches its preprocessing and loads local weights."""

from __future__ import annotations

from pathlib import Path

import keras
import kplug
import numpy as np
import pytest
from conftest import TINY_BACKBONES
from kplug.testing import slow_params

from kplug_vision import backbones
from kplug_vision.preprocessing import IMAGENET_MEAN, IMAGENET_STD


def numpy(tensor) -> np.ndarray:
    return keras.ops.convert_to_numpy(tensor)


def grey_batch(rows: int = 4) -> np.ndarray:
    return np.random.default_rng(1).random((rows, 28, 28, 1)).astype("float32")


# XLA compiles these four for 16-39 s each (a train step, or the eager calls of a reload): slow on
# jax, quick elsewhere
SLOW_ON_JAX = {"convnext", "efficientnet", "mobilenetv3", "vit"}
FAMILIES = slow_params(sorted(TINY_BACKBONES), SLOW_ON_JAX, "jax")


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_builds_small_and_trains_a_step(family: str) -> None:
    backbone = backbones.BACKBONES[family]((28, 28, 1), **TINY_BACKBONES[family])
    model = keras.Sequential([keras.Input((28, 28, 1)), backbone, keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [numpy(v) for v in backbone.trainable_variables]
    loss = model.train_on_batch(grey_batch(), np.array([0, 1, 2, 0]))
    assert np.isfinite(loss)
    assert backbone.count_params() < 100_000
    changed = [
        not np.allclose(a, numpy(v)) for a, v in zip(before, backbone.trainable_variables, strict=True)
    ]
    assert sum(changed) > len(changed) // 2
    # grey MNIST -> 3 channels at 32x32, in front of the network
    assert backbone.get_layer("to_rgb").output.shape[-1] == 3
    assert tuple(backbone.get_layer("resize").output.shape[1:3]) == (32, 32)
    assert len(backbone.output.shape) == 2


def test_imagenet_normalisation_is_attached() -> None:
    backbone = backbones.resnet((8, 8, 3), **TINY_BACKBONES["resnet"])
    normalize = keras.Model(backbone.input, backbone.get_layer("normalize").output)
    white = normalize(np.ones((1, 8, 8, 3), "float32"))
    expected = (1.0 - numpy(IMAGENET_MEAN)) / numpy(IMAGENET_STD)
    np.testing.assert_allclose(numpy(white)[0, 0, 0], expected, rtol=1e-5)
    vit = backbones.vit((32, 32, 1), **{**TINY_BACKBONES["vit"], "input_max": 255.0})
    scaled = keras.Model(vit.input, vit.get_layer("normalize").output)(
        np.full((1, 32, 32, 1), 255.0, "float32")
    )
    np.testing.assert_allclose(numpy(scaled), 1.0, rtol=1e-6)  # [0, 255] -> [-1, 1]


@pytest.mark.parametrize("family", FAMILIES)
def test_saved_weights_file_reloads_to_identical_predictions(family: str, tmp_path: Path) -> None:
    options = TINY_BACKBONES[family]
    trained = backbones.BACKBONES[family]((28, 28, 1), **options)
    path = tmp_path / f"{family}.weights.h5"
    trained.get_layer(family).save_weights(str(path))
    reloaded = backbones.BACKBONES[family]((28, 28, 1), **options, weights=str(path))
    fresh = backbones.BACKBONES[family]((28, 28, 1), **options)
    x = grey_batch()
    np.testing.assert_array_equal(numpy(trained(x)), numpy(reloaded(x)))
    assert not np.allclose(numpy(trained(x)), numpy(fresh(x)))  # random init differs


def test_local_keras_hub_preset_reloads_with_its_image_converter(tmp_path: Path) -> None:
    import keras_hub

    trained = backbones.resnet((28, 28, 1), **TINY_BACKBONES["resnet"])
    preset = tmp_path / "tiny_resnet"
    trained.get_layer("resnet").save_to_preset(str(preset))
    converter = keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0)
    converter.save_to_preset(str(preset))
    x = grey_batch()
    for factory in (backbones.resnet, backbones.keras_hub_image):
        reloaded = factory((28, 28, 1), preset=str(preset))
        assert tuple(reloaded.get_layer("resize").output.shape[1:3]) == (32, 32)  # from the converter
        # the converter scales [0, 255] by 1/255: identity on kplug's [0, 1] images
        normalize = keras.Model(reloaded.input, reloaded.get_layer("normalize").output)
        np.testing.assert_allclose(
            numpy(normalize(x)), numpy(keras.layers.Resizing(32, 32)(np.repeat(x, 3, -1))), atol=1e-6
        )
    # with the trained model's normalisation, the preset gives its exact predictions
    same = backbones.resnet((28, 28, 1), preset=str(preset), normalization="imagenet")
    np.testing.assert_array_equal(numpy(trained(x)), numpy(same(x)))


def test_missing_weights_file_is_a_config_error(plugins: kplug.Plugins, tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="no such file"):
        backbones.resnet((28, 28, 1), **TINY_BACKBONES["resnet"], weights=str(tmp_path / "nope.weights.h5"))
    with pytest.raises(kplug.ConfigError, match="not a keras-hub preset directory"):
        backbones.vit((32, 32, 3), preset=str(tmp_path))


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    small = backbones.resnet((28, 28, 1), **TINY_BACKBONES["resnet"])
    path = tmp_path / "small.weights.h5"
    small.get_layer("resnet").save_weights(str(path))
    with pytest.raises(kplug.CheckpointError, match="same architecture"):
        backbones.resnet((28, 28, 1), **{**TINY_BACKBONES["resnet"], "blocks": [2]}, weights=str(path))


def test_rgb_backbone_refuses_four_channels() -> None:
    with pytest.raises(kplug.DataError, match="1 or 3 channels"):
        backbones.mobilenetv3((32, 32, 4), **TINY_BACKBONES["mobilenetv3"])


def test_every_backbone_takes_the_shared_weights_option(plugins: kplug.Plugins) -> None:
    for name in backbones.BACKBONES:
        options = plugins.registry.get("backbone", name).options.model_fields
        assert "weights" in options and "input_shape" not in options, name
        assert options["weights"].default is None
