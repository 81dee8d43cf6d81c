"""Built-in logger: TensorBoard, through Keras' own ``keras.callbacks.TensorBoard``.

Keras writes the epoch scalars (train and ``val_`` metrics, and the learning rate);
kplug adds the resolved run config as a text summary. Event files go to
``<run_dir>/tensorboard/{train,validation}``: ``tensorboard --logdir runs/``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import keras
import yaml

from kplug.config.schema import RunConfig
from kplug.errors import ConfigError
from kplug.plugin.manager import hookimpl

# the summary writer is TensorFlow's, its scalar/text ops come from the tensorboard package
_NEEDS = ("tensorflow", "tensorboard")


class RunTensorBoard(keras.callbacks.TensorBoard):
    """Log epoch metrics, the learning rate and the run config for TensorBoard.

    Works on every backend; it needs TensorFlow and TensorBoard installed
    (``pip install 'kplug[tensorboard]'``) for the event-file writer.

    Args:
        run_dir: the run directory (supplied by kplug).
        run_config: the resolved run config, logged as text (supplied by kplug).
        log_dir: folder of the event files, relative to the run directory.
        histogram_freq: log weight histograms every N epochs (0: never).
        write_graph: log the Keras model's structure (functional models).
    """

    def __init__(
        self,
        run_dir: Path,
        run_config: RunConfig,
        log_dir: str = "tensorboard",
        histogram_freq: int = 0,
        write_graph: bool = False,
    ) -> None:
        missing = [name for name in _NEEDS if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"loggers: tensorboard writes event files with TensorFlow's summary writer, and "
                f"{', '.join(missing)} is not installed: pip install 'kplug[tensorboard]'."
            )
        if Path(log_dir).is_absolute() or ".." in Path(log_dir).parts:
            raise ConfigError(
                f"loggers: tensorboard log_dir {log_dir!r} must be a folder inside the run directory."
            )
        super().__init__(
            log_dir=str(Path(run_dir) / log_dir), histogram_freq=histogram_freq, write_graph=write_graph
        )
        self.config_text = yaml.safe_dump(run_config.to_dict(), sort_keys=False)
        self._config_written = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if not self._config_written:  # once per run, not per stage
            indented = "\n".join("    " + line for line in self.config_text.splitlines())
            with self._train_writer.as_default():
                self.summary.text("config", indented, step=0)
            self._config_written = True


@hookimpl
def kplug_register_loggers(register):
    """Register the built-in loggers."""
    register("tensorboard", RunTensorBoard)
