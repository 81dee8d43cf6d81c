"""Each augmentation changes images while training and leaves them alone at inference."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from kplug.testing import slow_params

from kplug_vision.augmentations import AUGMENTATIONS, RandomApply, RandomResizedCrop

# Options that make each augmentation visibly act on a small batch.
STRONG = {
    "flip": {"mode": "horizontal_and_vertical"},
    "rotation": {"factor": 0.2},
    "zoom": {"factor": 0.3},
    "crop": {"scale": [0.5, 0.8]},
    "translation": {"factor": 0.2},
    "contrast": {"factor": 0.5},
    "color-jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.5, "hue": 0.2},
    "erasing": {"scale": [0.1, 0.3], "probability": 1.0},
    "randaugment": {"num_ops": 2, "factor": 0.8},
}


def images(rows: int = 8, channels: int = 3) -> np.ndarray:
    """Smooth, asymmetric images in [0, 1] (a gradient plus a bright corner)."""
    grid = np.linspace(0.0, 1.0, 16, dtype="float32")
    base = 0.6 * grid[None, :, None] * grid[None, None, :]
    batch = np.repeat(base, rows, axis=0)
    batch[:, :4, :4] = 1.0
    batch = batch[..., None] * np.linspace(0.6, 1.0, channels, dtype="float32")
    return (batch * np.linspace(0.5, 1.0, rows, dtype="float32")[:, None, None, None]).astype("float32")


# jax compiles RandAugment's eager ops one by one (22 s): slow on jax, quick elsewhere
SLOW_ON_JAX = {"randaugment"}


NAMES = slow_params(sorted(AUGMENTATIONS), SLOW_ON_JAX, "jax")


@pytest.mark.parametrize("name", NAMES)
def test_changes_images_only_while_training(name: str) -> None:
    layer = AUGMENTATIONS[name](**STRONG[name])
    x = images()
    trained = np.array(layer(x, training=True))
    assert trained.shape == x.shape
    changed = np.abs(trained - x).reshape(len(x), -1).max(axis=1) > 1e-3
    assert changed.sum() >= len(x) // 2, f"{name} changed only {changed.sum()} of {len(x)} images"
    np.testing.assert_array_equal(np.array(layer(x, training=False)), x)


@pytest.mark.parametrize("name", ["flip", "crop", "erasing", "randaugment", "contrast"])
def test_greyscale_images(name: str) -> None:
    x = images(channels=1)
    layer = AUGMENTATIONS[name](**STRONG[name])
    assert np.array(layer(x, training=True)).shape == x.shape


@pytest.mark.parametrize("probability, expected", [(0.0, (0, 0)), (0.5, (10, 54)), (1.0, (64, 64))])
def test_probability_is_per_image(probability: float, expected: tuple[int, int]) -> None:
    layer = AUGMENTATIONS["erasing"](scale=[0.2, 0.3], probability=probability)
    x = images(rows=64)
    changed = (np.abs(np.array(layer(x, training=True)) - x).reshape(64, -1).max(axis=1) > 1e-3).sum()
    assert expected[0] <= changed <= expected[1]
    np.testing.assert_array_equal(np.array(layer(x, training=False)), x)


def test_crop_window_stays_inside_and_keeps_size() -> None:
    x = images()
    assert np.array(RandomResizedCrop((1.0, 1.0))(x, training=True)) == pytest.approx(x, abs=1e-5)
    cropped = np.array(RandomResizedCrop((0.5, 0.5))(x, training=True))
    assert cropped.shape == x.shape
    assert cropped.min() >= x.min() - 1e-6 and cropped.max() <= x.max() + 1e-6  # no padding values
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop((0.0, 1.0))


def test_pipeline_saves_and_loads_safely(tmp_path: Path) -> None:
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            AUGMENTATIONS["crop"](probability=0.5),
            AUGMENTATIONS["randaugment"](),
            AUGMENTATIONS["flip"](probability=0.3),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.layers[0], RandomApply)
    assert isinstance(loaded.layers[0].layer, RandomResizedCrop)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(images(), training=False)),
        keras.ops.convert_to_numpy(model(images(), training=False)),
        atol=1e-6,
    )
