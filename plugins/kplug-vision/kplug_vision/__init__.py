"""kplug-vision: image backbones, image augmentations and image data sources for kplug.

Installed, it is found through the ``kplug`` entry-point group. It adds:

- backbones ``resnet``, ``vit`` (keras-hub), ``efficientnet``, ``mobilenetv3``,
  ``convnext`` (keras.applications) and ``keras-hub`` (any keras-hub image backbone
  from a keras-hub preset), each with its preprocessing attached; ``preset:`` takes local
  directories, names registered in ``KPLUG_PRESETS`` and keras-hub names/handles,
  ``weights: imagenet`` keras.applications' files; ``kplug presets`` lists them;
- augmentations ``flip``, ``rotation``, ``zoom``, ``crop``, ``translation``,
  ``contrast``, ``color-jitter``, ``erasing``, ``randaugment`` (layers in the model)
  and the batch augmentations ``mixup`` and ``cutmix`` (mixing images and labels);
- data sources ``image-folder`` and ``image-arrays``.

keras-hub is imported only when a keras-hub backbone is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kplug

from kplug_vision.augmentations import AUGMENTATIONS, RandomApply, RandomResizedCrop
from kplug_vision.backbones import BACKBONES
from kplug_vision.datasets import image_arrays, image_folder
from kplug_vision.mixing import BATCH_AUGMENTATIONS, make_cutmix, make_mixup
from kplug_vision.preprocessing import SelectToken
from kplug_vision.presets import PRESETS

if TYPE_CHECKING:
    from kplug.plugin import Register

__all__ = [
    "AUGMENTATIONS",
    "BACKBONES",
    "BATCH_AUGMENTATIONS",
    "RandomApply",
    "RandomResizedCrop",
    "SelectToken",
    "image_arrays",
    "image_folder",
    "make_cutmix",
    "make_mixup",
]


@kplug.hookimpl
def kplug_register_backbones(register: Register) -> None:
    """Register the image backbones."""
    for name, factory in BACKBONES.items():
        register(name, factory, presets=PRESETS[name])


@kplug.hookimpl
def kplug_register_augmentations(register: Register) -> None:
    """Register the image augmentations (layers) and MixUp/CutMix (batch transforms)."""
    for name, factory in AUGMENTATIONS.items():
        register(name, factory)
    for name, factory in BATCH_AUGMENTATIONS.items():
        register(name, factory, batch=True)


@kplug.hookimpl
def kplug_register_datasets(register: Register) -> None:
    """Register the image data sources."""
    register("image-folder", image_folder, path_option="path")
    register("image-arrays", image_arrays, in_memory=True)
