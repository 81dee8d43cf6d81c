"""kplug: transfer learning and fine-tuning on Keras 3, on JAX, TensorFlow and PyTorch.

Example::

    import kplug
    result = kplug.fit("run.yaml")
    predictions = kplug.predict(result.run_dir, data="held_out.tsv")
"""

import os

# TensorFlow's C++ start-up chatter hides kplug's own output; users can still set this.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kplug.config import RunConfig, load_config
from kplug.distribution import Distribution
from kplug.errors import CheckpointError, ConfigError, DataError, KplugError, PluginError, TrainingError
from kplug.examples import Examples
from kplug.head import Head
from kplug.plugins import Plugins, hookimpl, load_plugins
from kplug.precision import Precision
from kplug.prediction import evaluate, predict
from kplug.trainer import FitResult, Trainer, fit

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
