"""uint8 pixel arrays reach the model scaled to [0, 1], with a channel axis on (N, H, W) images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.builtin.datasets import arrays, npz
from kplug.data.images import as_model_pixels


def digits_like(rows=120, seed=0):
    """keras.datasets.mnist-style arrays: (N, 28, 28) uint8 pixels, labels by which half is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    x = rng.integers(0, 60, (rows, 28, 28)).astype("uint8")
    x[y == 1, :14] += 180
    x[y == 0, 14:] += 180
    return x, y


def test_uint8_images_get_a_channel_axis_and_unit_scale():
    x, _ = digits_like(4)
    pixels = as_model_pixels(x)
    assert pixels.shape == (4, 28, 28, 1) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels[..., 0], x / 255.0, rtol=1e-6)
    assert as_model_pixels(x, scale=False).dtype == np.uint8


def test_other_arrays_pass_unchanged():
    values = np.random.default_rng(0).normal(size=(4, 28, 28)).astype("float32")
    assert as_model_pixels(values) is values


def test_the_arrays_and_npz_sources_scale_pixels(tmp_path):
    x, y = digits_like(6)
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    for examples in (arrays(x, y), npz(str(tmp_path / "digits.npz"))):
        assert examples.features.shape == (6, 28, 28, 1) and examples.features.max() <= 1.0
    assert arrays(x.reshape(6, -1), y).features.max() <= 1.0  # flat pixel rows are scaled too
    assert arrays(x, y, scale=False).features.dtype == np.uint8


def test_a_cnn_trains_on_keras_datasets_style_arrays_and_predicts_on_them(tmp_path):
    x, y = digits_like()
    config = blob_config(x, y)
    config["model"]["backbone"] = {"name": "small-cnn", "options": {"filters": [4], "dense_units": 8}}
    config["train"] = {"epochs": 3, "verbose": 0, "optimizer": {"learning_rate": 0.01}}
    result = kplug.fit(config)
    assert result.metrics["accuracy"] > 0.9  # trained on [0, 1] inputs: raw 0-255 would not learn this fast
    raw = kplug.predict(result.run_dir, data={"x": x[:5]})
    scaled = kplug.predict(result.run_dir, data={"x": x[:5, :, :, None].astype("float32") / 255.0})
    assert raw == scaled  # the same pixels, scaled by kplug or by hand


def test_a_cnn_on_images_without_a_channel_axis_says_how_to_add_one():
    x, y = digits_like(40)
    config = blob_config(x.astype("float32") / 255.0, y)
    config["model"]["backbone"] = {"name": "small-cnn"}
    with pytest.raises(
        kplug.ConfigError,
        match=r"small-cnn takes images of shape \(height, width, channels\).*\(28, 28\).*x\[\.\.\., None\]",
    ):
        kplug.fit(config)
