"""kplug: transfer learning and fine-tuning on Keras 3, on JAX, TensorFlow and PyTorch.

Example::

    import kplug
    result = kplug.fit("run.yaml")
    predictions = kplug.predict(result.run_dir, data="held_out.tsv")

Names are imported when first used (PEP 562): ``import kplug`` loads neither Keras nor a
backend, so the command line starts fast; ``kplug.fit`` and the others load them on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kplug.backend import quiet_logs

# TensorFlow's C++ start-up chatter hides kplug's own output; users can still set this.
quiet_logs.default_log_level()

if TYPE_CHECKING:
    from kplug.backend.quiet_logs import quiet_tensorflow
    from kplug.config.load import load_config
    from kplug.config.schema import RunConfig
    from kplug.data.example_set import Examples
    from kplug.errors import CheckpointError, ConfigError, DataError, KplugError, PluginError, TrainingError
    from kplug.inference.prediction import evaluate, predict
    from kplug.plugin.distribution import Distribution
    from kplug.plugin.head import Head
    from kplug.plugin.manager import Plugins, hookimpl, load_plugins
    from kplug.plugin.precision import Precision
    from kplug.speed.run import bench
    from kplug.train.trainer import FitResult, Trainer, fit

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "bench": "kplug.speed.run",
    "load_config": "kplug.config.load",
    "RunConfig": "kplug.config.schema",
    "Examples": "kplug.data.example_set",
    "CheckpointError": "kplug.errors",
    "ConfigError": "kplug.errors",
    "DataError": "kplug.errors",
    "KplugError": "kplug.errors",
    "PluginError": "kplug.errors",
    "TrainingError": "kplug.errors",
    "evaluate": "kplug.inference.prediction",
    "predict": "kplug.inference.prediction",
    "quiet_tensorflow": "kplug.backend.quiet_logs",
    "Distribution": "kplug.plugin.distribution",
    "Head": "kplug.plugin.head",
    "Plugins": "kplug.plugin.manager",
    "hookimpl": "kplug.plugin.manager",
    "load_plugins": "kplug.plugin.manager",
    "Precision": "kplug.plugin.precision",
    "FitResult": "kplug.train.trainer",
    "Trainer": "kplug.train.trainer",
    "fit": "kplug.train.trainer",
}

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "Distribution",
    "Examples",
    "FitResult",
    "Head",
    "KplugError",
    "PluginError",
    "TrainingError",
    "Plugins",
    "Precision",
    "RunConfig",
    "Trainer",
    "bench",
    "evaluate",
    "fit",
    "hookimpl",
    "load_config",
    "load_plugins",
    "predict",
    "quiet_tensorflow",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kplug' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # look it up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
