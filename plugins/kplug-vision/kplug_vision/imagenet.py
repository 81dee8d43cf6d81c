"""``weights: imagenet`` for the keras.applications families, through Keras' own download cache.

The file names, addresses and hashes are keras.applications' own (read from the pinned Keras),
so a file downloaded by ``keras.applications.EfficientNetB0(include_top=False)`` is the one
kplug loads, and the other way round. Only the standard architectures have such files: the
options must name a variant keras.applications publishes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kplug.plugin import ConfigError

from kplug_vision import hub

IMAGENET = "imagenet"
HOST = "storage.googleapis.com"


@dataclass(frozen=True)
class WeightsFile:
    """One keras.applications "notop" ImageNet file: its name, address and hash."""

    name: str
    url: str
    file_hash: str


def keras_cache() -> Path:
    """Keras' download folder for weights: ``$KERAS_HOME/models``, default ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def _refuse(family: str, option: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(
        f"weights = 'imagenet': keras.applications publishes ImageNet weights for {family} only with "
        f"{allowed}, not {option} = {value!r}. Leave {option} at its default, or train from random "
        f"weights (weights unset)."
    )


def efficientnet_file(options: dict[str, Any]) -> WeightsFile:
    """The file of ``efficientnet`` ``variant`` b0..b7 (all seven stages, the variant's coefficients)."""
    from keras.src.applications import efficientnet

    for option, default in (("width_coefficient", None), ("depth_coefficient", None), ("stages", 7)):
        if options.get(option, default) != default:
            raise _refuse("efficientnet", option, options[option], f"{option} = {default!r}")
    variant = options.get("variant", "b0")
    name = f"efficientnet{variant}_notop.h5"
    return WeightsFile(name, efficientnet.BASE_WEIGHTS_PATH + name, efficientnet.WEIGHTS_HASHES[variant][1])


def mobilenetv3_file(options: dict[str, Any]) -> WeightsFile:
    """The file of ``mobilenetv3`` small/large at ``alpha`` 0.75 or 1.0 (minimalistic: 1.0 only)."""
    from keras.src.applications import mobilenet_v3

    size, alpha = options.get("size", "small"), float(options.get("alpha", 1.0))
    minimalistic = bool(options.get("minimalistic", False))
    model = f"{size}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
    if model not in mobilenet_v3.WEIGHTS_HASHES:
        raise _refuse("mobilenetv3", "alpha", alpha, "alpha 0.75 or 1.0 (minimalistic: 1.0)")
    name = f"weights_mobilenet_v3_{model}_no_top_v2.h5"
    return WeightsFile(name, mobilenet_v3.BASE_WEIGHT_PATH + name, mobilenet_v3.WEIGHTS_HASHES[model][1])


def convnext_file(options: dict[str, Any]) -> WeightsFile:
    """The file of ``convnext`` ``variant`` tiny..xlarge (the variant's depths and widths)."""
    from keras.src.applications import convnext

    for option in ("depths", "projection_dims"):
        if options.get(option) is not None:
            raise _refuse("convnext", option, options[option], f"{option} unset (the variant's)")
    model = f"convnext_{options.get('variant', 'tiny')}"
    name = f"{model}_notop.h5"
    return WeightsFile(name, convnext.BASE_WEIGHTS_PATH + name, convnext.WEIGHTS_HASHES[model][1])


FILES = {"efficientnet": efficientnet_file, "mobilenetv3": mobilenetv3_file, "convnext": convnext_file}


def weights_path(family: str, options: dict[str, Any]) -> str:
    """The local path of ``family``'s ImageNet file for ``options``, downloaded by Keras if needed.

    Raises:
        ConfigError: the family has no keras.applications ImageNet file, the options are not a
            published variant, or the file is not here and the machine is offline.
    """
    if family not in FILES:
        raise ConfigError(
            f"weights = 'imagenet': {family} has no keras.applications ImageNet file (only "
            f"{', '.join(FILES)} do). Use a keras-hub preset instead, e.g. preset: "
            f"{'vit_base_patch16_224_imagenet' if family == 'vit' else 'resnet_50_imagenet'} "
            f"(`kplug presets` lists them)."
        )
    file = FILES[family](options)
    cached = keras_cache() / file.name
    if not cached.is_file() and not hub.reachable(HOST):
        raise ConfigError(offline_message(file, f"{HOST} cannot be reached"))
    import keras

    try:
        return keras.utils.get_file(
            file.name,
            file.url,
            cache_subdir="models",
            file_hash=file.file_hash,
            cache_dir=str(keras_cache().parent),
        )
    except Exception as error:  # Keras raises a bare Exception("URL fetch failure ...")
        raise ConfigError(offline_message(file, f"{type(error).__name__}: {error}")) from None


def offline_message(file: WeightsFile, reason: str) -> str:
    """One paragraph: the file is not here, Keras cannot download it, where it belongs, how to copy it."""
    return (
        f"weights = 'imagenet': {file.name} is not in Keras' download cache and Keras cannot download "
        f"it: the machine is offline or the address is unreachable ({reason}). Keras keeps downloaded "
        f"weights in {keras_cache()} (set KERAS_HOME to move it). To use them offline, download "
        f"{file.url} on a machine with internet (or build the keras.applications model there with "
        f"include_top=False, which puts it in that machine's ~/.keras/models) and copy it to "
        f"{keras_cache() / file.name} here, or give its path: weights: path/to/{file.name}."
    )
