"""Where a ``preset:`` value points: a local directory, a registered one, or a keras-hub handle.

``preset:`` takes, in this order: a local keras-hub preset directory; the name of a directory
registered in ``KPLUG_PRESETS``; a keras-hub preset name (``resnet_50_imagenet``) or handle
(``kaggle://keras/resnetv1/keras/resnet_50_imagenet/3``, ``hf://keras/resnet_50_imagenet``).
A handle already in keras-hub's download caches (kagglehub's ``KAGGLEHUB_CACHE``, Hugging Face's
``HF_HUB_CACHE``) loads from there without touching the network; otherwise keras-hub downloads
it. When the machine is offline the error says where the cache is and how to copy a preset in.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from kplug.plugin import ConfigError, find_preset_directory

from kplug_vision.known_presets import KNOWN_PRESETS, KnownPreset

KAGGLE = "kaggle://"
HF = "hf://"
# the hosts keras-hub downloads from, by scheme
HOSTS = {"kaggle": "api.kaggle.com", "hf": "huggingface.co"}
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
CONNECT_TIMEOUT = 3.0  # seconds: deciding the machine is offline must not hang a run


@dataclass(frozen=True)
class Source:
    """What keras-hub loads for a ``preset:`` value.

    Attributes:
        preset: the value as the config wrote it.
        location: a local directory (given, registered, or found in a download cache), or ``None``.
        handle: the keras-hub handle to download when ``location`` is ``None``.
    """

    preset: str
    location: Path | None
    handle: str | None = None

    @property
    def target(self) -> str:
        """What to pass to keras-hub's ``from_preset``."""
        return str(self.location) if self.location is not None else str(self.handle)


def known_preset(name: str) -> KnownPreset | None:
    """The entry of ``KNOWN_PRESETS`` named ``name``."""
    return next((p for presets in KNOWN_PRESETS.values() for p in presets if p.name == name), None)


def kaggle_cache() -> Path:
    """kagglehub's download folder: ``$KAGGLEHUB_CACHE``, default ``~/.cache/kagglehub``."""
    from kagglehub.config import get_cache_folder

    return Path(get_cache_folder())


def hf_cache() -> Path:
    """Hugging Face's download folder: ``$HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    from huggingface_hub.constants import HF_HUB_CACHE

    return Path(HF_HUB_CACHE)


def kaggle_folder(handle: str) -> Path:
    """The cache folder of a Kaggle handle's variation (its versions and ``.complete`` markers)."""
    from kagglehub.handle import parse_model_handle

    model = parse_model_handle(handle.removeprefix(KAGGLE))
    return kaggle_cache() / "models" / model.owner / model.model / model.framework / model.variation


def hf_folder(handle: str) -> Path:
    """The cache folder of a Hugging Face handle (``models--org--name``)."""
    return hf_cache() / ("models--" + handle.removeprefix(HF).replace("/", "--"))


def cache_folder(handle: str) -> Path:
    """Where keras-hub's downloads of ``handle`` (a Kaggle or Hugging Face handle) are kept."""
    return hf_folder(handle) if handle.startswith(HF) else kaggle_folder(handle)


def _complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and any(
        (directory / name).is_file() for name in ("model.weights.h5", "model.weights.json")
    )


def _cached_kaggle(handle: str) -> Path | None:
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    model = parse_model_handle(handle.removeprefix(KAGGLE))
    if model.is_versioned():
        versions = [model]
    else:  # without a version kagglehub asks the server for the newest: take the newest cached one
        folder = kaggle_folder(handle)
        numbers = sorted((int(p.name) for p in folder.glob("*") if p.name.isdigit()), reverse=True)
        versions = [model.with_version(n) for n in numbers]
    for version in versions:
        found = Cache().load_from_cache(version, "config.json")
        if found is not None and _complete(Path(found).parent):
            return Path(found).parent
    return None


def _cached_hf(handle: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(handle.removeprefix(HF), "config.json", cache_dir=str(hf_cache()))
    if isinstance(found, str) and _complete(Path(found).parent):
        return Path(found).parent
    return None


def cached(handle: str) -> Path | None:
    """The local directory of a keras-hub handle already downloaded, or ``None``."""
    try:
        return _cached_hf(handle) if handle.startswith(HF) else _cached_kaggle(handle)
    except (ValueError, OSError):
        return None  # a malformed handle is reported when keras-hub tries it


def handle_of(preset: str, presets: dict[str, dict] | None = None) -> str | None:
    """The keras-hub handle ``preset`` names: itself for ``kaggle://``/``hf://``, a registered name's.

    Args:
        preset: the ``preset:`` value.
        presets: keras-hub's registry (``keras_hub.models.Backbone.presets``); by default the
            table of ``KNOWN_PRESETS``.
    """
    if preset.startswith((KAGGLE, HF)):
        return preset
    if presets is not None and preset in presets:
        return str(presets[preset]["kaggle_handle"])
    known = known_preset(preset)
    return known.handle if known is not None else None


def reachable(host: str) -> bool:
    """Can a download reach ``host`` (port 443)? Behind a proxy: assume yes and let the download try."""
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    try:
        socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT).close()
    except OSError:
        return False
    return True


def host_of(handle: str) -> str:
    """The host keras-hub downloads ``handle`` from."""
    return HOSTS["hf" if handle.startswith(HF) else "kaggle"]


def resolve(preset: str, registry: dict[str, dict] | None = None) -> Source:
    """Where ``preset`` is: a local directory, or the keras-hub handle to download.

    Args:
        preset: the ``preset:`` value.
        registry: keras-hub's preset registry (``keras_hub.models.Backbone.presets``), to accept
            every name keras-hub knows; by default only ``KNOWN_PRESETS``.

    Raises:
        ConfigError: a directory without ``config.json``, a name that is nothing known, or a
            handle that is not here while the machine is offline (see ``offline_message``).
    """
    path = Path(preset).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"preset = {preset!r}: not a keras-hub preset directory (no config.json). Save one with "
                f"backbone.save_to_preset(dir), or give a keras-hub preset name (kplug presets lists them)."
            )
        return Source(preset, path)
    registered = find_preset_directory(preset)
    if registered is not None:
        return Source(preset, registered.path)
    handle = handle_of(preset, registry)
    if handle is None:
        raise ConfigError(
            f"preset = {preset!r}: not a local preset directory, not a directory registered in "
            f"KPLUG_PRESETS, and not a keras-hub preset name or handle (kaggle://..., hf://...). "
            f"`kplug presets` lists the names kplug-vision knows and which are on this machine."
        )
    location = cached(handle)
    if location is not None:
        return Source(preset, location, handle)
    if not reachable(host_of(handle)):
        raise ConfigError(offline_message(preset, handle, f"{host_of(handle)} cannot be reached"))
    return Source(preset, None, handle)


def offline_message(preset: str, handle: str, reason: str) -> str:
    """One paragraph: the preset is not here, the machine is offline, where the cache is, how to copy it."""
    hf = handle.startswith(HF)
    cache, variable = (hf_cache(), "HF_HUB_CACHE") if hf else (kaggle_cache(), "KAGGLEHUB_CACHE")
    folder = cache_folder(handle)
    name = preset.rstrip("/").rsplit("/", 1)[-1]
    return (
        f"preset = {preset!r} ({handle}) is not on this machine and keras-hub cannot download it: "
        f"the machine is offline ({reason}). keras-hub keeps downloaded presets in {cache} (set "
        f"{variable} to move it); this one belongs in {folder}. To use it offline, download it on a "
        f'machine with internet (python -c "import keras_hub; '
        f"keras_hub.models.Backbone.from_preset('{preset}')\") and copy the folder "
        f"{folder.relative_to(cache)} of that machine's {variable} to {folder} here; or there run "
        f"keras_hub.models.Backbone.from_preset('{preset}').save_to_preset('{name}'), copy the {name} "
        f"folder here and write preset: path/to/{name} (or add its parent folder to KPLUG_PRESETS and "
        f"write preset: {name})."
    )
