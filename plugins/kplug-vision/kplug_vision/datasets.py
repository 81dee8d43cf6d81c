"""Image data sources: a folder of images with one sub-folder per class, and in-memory image arrays.

Both return float32 images in ``[0, 1]`` with a channel axis, ``(N, height, width, 1 or 3)``;
the backbone's own preprocessing then resizes, repeats grey channels to RGB where its network
needs three, and normalises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from kplug.plugin import DataError, Examples

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _read_image(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype="float32") / 255.0
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error}).") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _is_grey(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "P":  # a palette: grey when every colour has equal channels
                rgb = np.asarray(image.convert("RGB"))
                return bool((rgb == rgb[..., :1]).all())
            return image.mode in GREY_MODES
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not a readable image ({error}).") from None


def image_folder(
    path: str,
    image_size: int | list[int] | None = None,
    color_mode: Literal["auto", "rgb", "grayscale"] = "auto",
) -> Examples:
    """Images in one sub-folder per class (``path/cat/1.png``, ``path/dog/2.jpg``, ...).

    The class of an image is its folder's name; classes are in sorted order. A folder
    holding images directly (no class folders) is read without labels, for prediction.

    Args:
        path: the root folder.
        image_size: resize every image to this size (one side or [height, width]);
            without it every image must have the same size.
        color_mode: ``grayscale`` (one channel), ``rgb`` (three) or ``auto``: one
            channel if every image is greyscale, else three.

    Returns:
        Float32 images in [0, 1] of shape (N, height, width, channels) and, with class
        folders, the folder name of each image as its label.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.options.path = {path!r}: no such folder.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if classes:
        files = [(f, name) for name in classes for f in _image_files(root / name)]
        empty = [name for name in classes if not _image_files(root / name)]
        if empty:
            raise DataError(
                f"{root}: class folder(s) {', '.join(empty)} hold no images "
                f"({', '.join(IMAGE_EXTENSIONS)}); remove them or add images."
            )
    else:
        files = [(f, None) for f in _image_files(root)]
    if not files:
        raise DataError(
            f"{root}: no images found; expected one sub-folder per class holding "
            f"{', '.join(IMAGE_EXTENSIONS)} files."
        )
    size = None
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(size) != 2 or min(size) < 1:
            raise DataError(f"data.options.image_size = {image_size!r}: give one size or [height, width].")
    if color_mode == "auto":
        color_mode = "grayscale" if all(_is_grey(f) for f, _ in files) else "rgb"
    mode = "L" if color_mode == "grayscale" else "RGB"
    images = [_read_image(f, mode, size) for f, _ in files]
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        first, other = sorted(shapes)[:2]
        raise DataError(
            f"{root}: images differ in size ({first[:2]} and {other[:2]}, ...); set data.options.image_size "
            f"to resize them all to one size."
        )
    targets: dict[str, Any] = {}
    names: dict[str, list[str]] = {}
    if classes:
        targets["label"] = np.asarray([name for _, name in files])
        names["label"] = classes
    return Examples(np.stack(images), targets, names)


def image_arrays(x: Any, y: Any = None, value_max: float | None = None) -> Examples:
    """In-memory images from Python: ``x`` of shape (N, height, width[, channels]), labels ``y``.

    Args:
        x: the images; a missing channel axis is added.
        y: labels (integers or strings), one per image.
        value_max: the value of a white pixel in ``x``, scaled to 1.0; default 255 for
            uint8 images, else 1.0 (already in [0, 1]).
    """
    images = np.asarray(x)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"data.options.x: expected images of shape (N, height, width) or (N, height, width, 1 or 3); "
            f"got shape {np.shape(x)}."
        )
    top = value_max if value_max is not None else (255.0 if images.dtype == np.uint8 else 1.0)
    features = images.astype("float32") / np.float32(top)
    return Examples(features, {} if y is None else {"label": np.asarray(y)})
