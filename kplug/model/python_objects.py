"""Runs given Python objects (a Keras model as the backbone, callback objects): what the run directory keeps.

A YAML file cannot hold a Keras object. The run directory keeps the backbone object as
``backbone.keras`` and its ``config.yaml`` names it there (``{name: keras-file, options: {path}}``),
so ``kplug train --resume``, ``evaluate`` and ``predict`` work from the directory alone.
Callback objects are left out of ``config.yaml``: a run resumed from its directory runs without them.
"""

from __future__ import annotations

from pathlib import Path

from kplug.config.schema import PYTHON_BACKBONE, PYTHON_CALLBACK, RunConfig
from kplug.errors import ConfigError, first_line

BACKBONE_FILE = "backbone.keras"


def portable_config(config: RunConfig, run_dir: Path) -> RunConfig:
    """``config`` as ``config.yaml`` of ``run_dir`` records it: Python objects replaced or left out."""
    changes = {}
    backbone = config.model.backbone
    if backbone.name == PYTHON_BACKBONE:
        saved = {"name": "keras-file", "options": {"path": str(Path(run_dir).resolve() / BACKBONE_FILE)}}
        model = config.model.model_copy(update={"backbone": backbone.model_copy(update=saved)})
        changes["model"] = model
    callbacks = [c for c in config.callbacks if c.name != PYTHON_CALLBACK]
    if len(callbacks) != len(config.callbacks):
        changes["callbacks"] = callbacks
    return config.model_copy(update=changes) if changes else config


def save_python_backbone(config: RunConfig, run_dir: Path) -> None:
    """Write the backbone object of ``config`` (if it has one) to ``run_dir/backbone.keras``.

    Raises:
        ConfigError: the object cannot be saved (a subclassed model without ``get_config``), so
            neither could the trained model be.
    """
    backbone = config.model.backbone
    if backbone.name != PYTHON_BACKBONE:
        return
    model = backbone.options["model"]
    try:
        model.save(Path(run_dir) / BACKBONE_FILE)
    except Exception as error:
        raise ConfigError(
            f"model.backbone: the Keras model {model.name!r} cannot be saved ({first_line(error)}); kplug "
            f"saves every run's model. Give a subclassed model get_config() and register its class with "
            f"keras.saving.register_keras_serializable()."
        ) from None
