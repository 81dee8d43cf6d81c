"""``load_finished_run``: a finished run directory, for plugins that post-process one (quantize, export).

A command such as ``kplug quantize RUN`` needs the run's model, its heads' losses and
metrics, and its data split the way training split it. ``FinishedRun`` gives exactly that
through a few named calls, so a plugin need not know how kplug reads data or compiles models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from kplug.config.schema import RunConfig
    from kplug.data.inputs import PreparedData
    from kplug.data.labels import LabelMap
    from kplug.inference.prediction import LoadedRun
    from kplug.plugin.manager import Plugins
    from kplug.plugin.resolve import ResolvedRun


@dataclass
class FinishedRun:
    """A run directory written by ``kplug train``, loaded (no code from it is executed).

    Attributes:
        run_dir: the run directory.
        model: the trained model (a plugin may replace it, e.g. with a quantized copy).
        loaded: what kplug read from the directory (resolved config, heads, label maps).
    """

    run_dir: Path
    model: keras.Model
    loaded: LoadedRun
    _data: PreparedData | None = field(default=None, repr=False)

    @property
    def config(self) -> RunConfig:
        """The run's config, as saved in ``config.yaml``."""
        return self.loaded.run.config

    @property
    def components(self) -> ResolvedRun:
        """The run's components with their validated options (see ``RunContext.components``)."""
        return self.loaded.run

    @property
    def label_maps(self) -> dict[str, LabelMap]:
        """Each target's label map, as saved in ``labels.json``."""
        return dict(self.loaded.label_maps)

    @property
    def in_memory_data(self) -> bool:
        """Whether the run trained on in-memory data (arrays in the config), which is not saved with it."""
        return bool(self.loaded.run.dataset.component.extra("in_memory"))

    def split_size(self, split: str) -> int:
        """The number of examples in ``train``, ``validation`` or ``test``, split as training split it."""
        return len(getattr(self._prepared().splits, split))

    def split_data(self, split: str) -> tuple[Any, Any]:
        """Model inputs and encoded targets of ``train``, ``validation`` or ``test``.

        The data is read from the run's own sources once, and split exactly as training split it.
        """
        from kplug.data.inputs import head_targets

        data = self._prepared()
        return data.inputs(split), head_targets(self.loaded.run, getattr(data.splits, split), data.label_maps)

    def compile(self, model: keras.Model | None = None, learning_rate: float | None = None) -> None:
        """Compile ``model`` (default: ``self.model``) with the run's heads' losses and metrics.

        Args:
            model: a model with the run's outputs.
            learning_rate: when given, also an optimizer as the run's config sets it up (for
                fine-tuning); without it the model is compiled for evaluation only.
        """
        from kplug.model.assembly import compile_model

        optimizer = None
        if learning_rate is not None:
            from kplug.train.optimizers import build_optimizer

            optimizer = build_optimizer(self.config.train.optimizer, learning_rate)
        target = self.model if model is None else model
        compile_model(target, self.loaded.heads, self.loaded.run, optimizer)

    def _prepared(self) -> PreparedData:
        if self._data is None:
            from kplug.data.inputs import prepare_data

            self._data = prepare_data(self.loaded.run)
        return self._data


def load_finished_run(run_dir: str | Path, plugins: Plugins | list[Any] | None = None) -> FinishedRun:
    """Load a run directory written by ``kplug train``.

    Args:
        run_dir: the run directory (holding ``config.yaml``, ``model.keras``, ``labels.json``).
        plugins: extra plugin objects or a loaded ``Plugins`` (default: the installed ones).

    Raises:
        CheckpointError: the directory is not a finished run.
        ConfigError: its config names a component no loaded plugin provides.
    """
    from kplug.inference.prediction import load_run

    loaded = load_run(run_dir, plugins)
    return FinishedRun(Path(run_dir), loaded.model, loaded)
