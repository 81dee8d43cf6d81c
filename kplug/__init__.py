"""kplug: transfer learning and fine-tuning on Keras 3, on JAX, TensorFlow and PyTorch.

Example::

    import kplug
    result = kplug.fit("run.yaml")
    predictions = kplug.predict(result.run_dir, data="held_out.tsv")
"""

import os

# TensorFlow's C++ start-up chatter hides kplug's own output; users can still set this.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kplug.config.load import load_config
from kplug.config.schema import RunConfig
from kplug.data.example_set import Examples
from kplug.errors import CheckpointError, ConfigError, DataError, KplugError, PluginError, TrainingError
from kplug.inference.prediction import evaluate, predict
from kplug.plugin.distribution import Distribution
from kplug.plugin.head import Head
from kplug.plugin.manager import Plugins, hookimpl, load_plugins
from kplug.plugin.precision import Precision
from kplug.train.trainer import FitResult, Trainer, fit

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
    "evaluate",
    "fit",
    "hookimpl",
    "load_config",
    "load_plugins",
    "predict",
]
