"""The image-folder reader and in-memory image arrays."""

from __future__ import annotations

from pathlib import Path

import kplug
import numpy as np
import pytest
from PIL import Image

from kplug_vision.datasets import image_arrays, image_folder


def write_folder(
    root: Path, images: np.ndarray, labels: np.ndarray, per_class: int = 4
) -> dict[str, np.ndarray]:
    """PNG files of a few digits of each of three classes: root/<digit>/<n>.png."""
    written = {}
    for digit in (3, 5, 7):
        chosen = images[labels == digit][:per_class]
        (root / f"d{digit}").mkdir(parents=True)
        for n, image in enumerate(chosen):
            Image.fromarray(image).save(root / f"d{digit}" / f"{n}.png")
        written[f"d{digit}"] = chosen
    return written


def test_reads_one_folder_per_class_losslessly(tmp_path: Path, digits) -> None:
    written = write_folder(tmp_path / "digits", *digits)
    examples = image_folder(str(tmp_path / "digits"))
    assert examples.features.shape == (12, 28, 28, 1) and examples.features.dtype == np.float32
    assert examples.label_names == {"label": ["d3", "d5", "d7"]}
    assert list(examples.targets["label"][:5]) == ["d3"] * 4 + ["d5"]
    np.testing.assert_array_equal(examples.features[4:8, ..., 0], written["d5"] / np.float32(255.0))


def test_resizes_and_converts_colour(tmp_path: Path, digits) -> None:
    write_folder(tmp_path / "digits", *digits)
    examples = image_folder(str(tmp_path / "digits"), image_size=[20, 16], color_mode="rgb")
    assert examples.features.shape == (12, 20, 16, 3)
    assert np.array_equal(examples.features[..., 0], examples.features[..., 2])


def test_folder_without_class_folders_reads_unlabeled(tmp_path: Path, digits) -> None:
    tmp_path.joinpath("new").mkdir()
    for n in range(3):
        Image.fromarray(digits[0][n]).save(tmp_path / "new" / f"{n}.png")
    examples = image_folder(str(tmp_path / "new"))
    assert len(examples) == 3 and examples.targets == {}


def test_bad_folders_are_data_errors(tmp_path: Path, digits) -> None:
    with pytest.raises(kplug.DataError, match="no such folder"):
        image_folder(str(tmp_path / "missing"))
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(kplug.DataError, match="cat hold no images"):
        image_folder(str(tmp_path / "empty"))
    mixed = tmp_path / "mixed" / "a"
    mixed.mkdir(parents=True)
    Image.fromarray(digits[0][0]).save(mixed / "0.png")
    Image.fromarray(digits[0][1][:20, :20]).save(mixed / "1.png")
    with pytest.raises(kplug.DataError, match="image_size"):
        image_folder(str(tmp_path / "mixed"))
    assert image_folder(str(tmp_path / "mixed"), image_size=24).features.shape == (2, 24, 24, 1)
    (mixed / "2.png").write_bytes(b"not a png")
    with pytest.raises(kplug.DataError, match="not a readable image"):
        image_folder(str(tmp_path / "mixed"), image_size=24)


def test_image_arrays_scale_bytes_and_add_channels(digits) -> None:
    examples = image_arrays(digits[0][:5], digits[1][:5])
    assert examples.features.shape == (5, 28, 28, 1)
    assert examples.features.max() <= 1.0 and examples.features.max() > 0.9
    np.testing.assert_array_equal(examples.targets["label"], digits[1][:5])
    with pytest.raises(kplug.DataError, match="expected images"):
        image_arrays(np.zeros((5, 28)))
