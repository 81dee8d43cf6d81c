"""The pretrained models kplug-vision's backbones load, for ``kplug presets``.

- ``resnet``, ``vit``, ``keras-hub``: the keras-hub presets of ``KNOWN_PRESETS`` (here when they
  are in kagglehub's cache) and the directories registered in ``KPLUG_PRESETS`` that hold that
  architecture;
- ``efficientnet``, ``mobilenetv3``, ``convnext``: ``weights: imagenet`` for each variant
  keras.applications publishes (here when the file is in Keras' cache).

Listing looks at the disk only: it imports neither keras-hub nor anything that downloads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kplug.plugin import Preset, PresetDirectory, preset_directories

from kplug_vision import hub, imagenet
from kplug_vision.backbones import CONVNEXT_VARIANTS, EFFICIENTNET_VARIANTS
from kplug_vision.known_presets import KNOWN_PRESETS

# keras-hub classes each backbone checks for; every other image class goes to `keras-hub`
CLASSES = {"resnet": "ResNetBackbone", "vit": "ViTBackbone"}
IMAGE_FILES = ("image_converter.json", "preprocessor.json")


def _holds(backbone: str, directory: PresetDirectory) -> bool:
    if backbone in CLASSES:
        return directory.class_name == CLASSES[backbone]
    is_image = any(name in directory.files for name in IMAGE_FILES) or directory.class_name in {
        p.class_name for p in KNOWN_PRESETS["keras-hub"]
    }
    return is_image and directory.class_name not in CLASSES.values()


def hub_presets(backbone: str) -> list[Preset]:
    """The registered directories and known keras-hub presets ``backbone`` loads."""
    registered = [
        Preset(
            directory.name,
            location=str(directory.path),
            source="KPLUG_PRESETS",
            description=f"local {directory.class_name or 'keras-hub'} preset",
        )
        for directory in preset_directories()
        if _holds(backbone, directory)
    ]
    known = []
    for preset in KNOWN_PRESETS[backbone]:
        location = hub.cached(preset.handle)
        known.append(
            Preset(
                preset.name,
                location=str(location) if location else None,
                source=f"keras-hub {preset.handle}",
                description=preset.description,
            )
        )
    return registered + known


def imagenet_presets(family: str, variants: list[dict[str, Any]]) -> list[Preset]:
    """``weights: imagenet`` for each of ``family``'s published variants."""
    listed = []
    for options in variants:
        file = imagenet.FILES[family](options)
        cached = imagenet.keras_cache() / file.name
        listed.append(
            Preset(
                imagenet.IMAGENET,
                option="weights",
                location=str(cached) if cached.is_file() else None,
                source=f"keras.applications {file.name}",
                description=f"ImageNet-1k weights of keras.applications' {family}",
                with_options=options,
            )
        )
    return listed


MOBILENET_VARIANTS = [
    {"size": size, "alpha": alpha, **({"minimalistic": True} if minimalistic else {})}
    for size in ("small", "large")
    for alpha, minimalistic in ((0.75, False), (1.0, False), (1.0, True))
]

PRESETS: dict[str, Callable[[], list[Preset]]] = {
    "resnet": lambda: hub_presets("resnet"),
    "vit": lambda: hub_presets("vit"),
    "keras-hub": lambda: hub_presets("keras-hub"),
    "efficientnet": lambda: imagenet_presets("efficientnet", [{"variant": v} for v in EFFICIENTNET_VARIANTS]),
    "mobilenetv3": lambda: imagenet_presets("mobilenetv3", MOBILENET_VARIANTS),
    "convnext": lambda: imagenet_presets("convnext", [{"variant": v} for v in CONVNEXT_VARIANTS]),
}
