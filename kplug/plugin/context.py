"""``RunContext``: the read-only view of one run that lifecycle hooks receive.

Lifecycle hooks (``kplug_on_fit_start``, ``kplug_training_model``, ``kplug_on_stage_start``,
``kplug_on_epoch_end``, ``kplug_on_fit_end``) get a ``RunContext`` as their ``run``
argument instead of the trainer itself: a plugin reads what the run is (its config,
directory, components, data, model) but cannot reach into the training loop. Every
attribute is a property over the live run, so ``run.model`` is the model once it is built
and ``run.run_dir`` is where this process writes.

This module imports nothing from ``kplug.train``: the types it names are only imported for
type checking, so the hook specs stay cheap to import and free of cycles.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import keras

    from kplug.config.schema import RunConfig
    from kplug.data.inputs import PreparedData
    from kplug.data.labels import LabelMap
    from kplug.plugin.distribution import Distribution
    from kplug.plugin.head import Head
    from kplug.plugin.resolve import ResolvedRun
    from kplug.train.stage_plan import StagePlan


class _Run(Protocol):
    """What ``RunContext`` reads from the engine that runs the training (kplug's ``Trainer``)."""

    config: RunConfig
    run: ResolvedRun
    run_dir: Path
    model: keras.Model | None
    training_model: keras.Model | None
    heads: dict[str, Head]
    data: PreparedData | None
    soft_targets: bool
    distribution: Distribution | None
    stage_plans: tuple[StagePlan, ...]

    def split_data(self, split: str) -> tuple[Any, Any]: ...


class RunContext:
    """One run, as lifecycle hooks see it (read-only).

    Example::

        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            print(run.config.name, run.run_dir, run.label_names("label"))

    Attributes are read-only properties: assigning one raises ``AttributeError``. What
    exists before the model is built (``config``, ``components``, ``run_dir``) is there in
    every hook; ``model``, ``heads``, ``data`` and ``distribution`` from
    ``kplug_on_fit_start`` on.
    """

    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        object.__setattr__(self, "_run", run)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"RunContext is read-only: cannot set {name!r}")

    def __repr__(self) -> str:
        return f"RunContext(name={self.config.name!r}, run_dir={str(self.run_dir)!r})"

    # -- what the run is ----------------------------------------------------

    @property
    def config(self) -> RunConfig:
        """The validated ``RunConfig`` (after every ``kplug_configure`` change)."""
        return self._run.config

    @property
    def components(self) -> ResolvedRun:
        """Every component the config names, looked up with its validated options.

        ``components.backbone``, ``.heads``, ``.dataset``, ``.augmentations``, ``.precision``,
        ``.distribution``, ``.callbacks`` and ``.loggers`` each hold ``component`` (the
        registered ``Component``), ``options`` and ``build(**context)``.
        """
        return self._run.run

    @property
    def run_dir(self) -> Path:
        """The directory this process writes (a scratch directory on ranks other than 0)."""
        return self._run.run_dir

    @property
    def stages(self) -> tuple[StagePlan, ...]:
        """The run's training stages (one ``Model.fit`` each), resolved and read-only.

        Hooks' ``stage`` indexes this tuple. Each ``StagePlan`` holds the stage's ``epochs``,
        ``batch_size``, ``trainable`` layers, ``optimizer`` settings (with its ``learning_rate``),
        ``schedule``, per-layer ``rates`` and ``optimizer_state``, with ``train``'s defaults applied.
        """
        return self._run.stage_plans

    def callback(self, name: str) -> Any | None:
        """Build the config's callback ``name`` from its options, or ``None`` when the run has none.

        A plugin whose callback carries settings (e.g. kplug-compress' ``lora``) reads them
        through this in its lifecycle hooks.
        """
        for chosen in self._run.run.callbacks:
            if chosen.component.name == name:
                return chosen.build()
        return None

    # -- what the run built -------------------------------------------------

    @property
    def model(self) -> keras.Model | None:
        """The run's model (evaluated, saved and reported), once built."""
        return self._run.model

    @property
    def training_model(self) -> keras.Model | None:
        """The model a ``kplug_training_model`` plugin returned (compiled and fitted), or ``None``."""
        return self._run.training_model

    @property
    def heads(self) -> dict[str, Head]:
        """The built heads by target name."""
        return dict(self._run.heads)

    @property
    def data(self) -> PreparedData | None:
        """The split examples, label maps and model inputs (from ``kplug_on_fit_start`` on)."""
        return self._run.data

    @property
    def label_maps(self) -> dict[str, LabelMap]:
        """Each target's label map (names <-> ids); empty before the data is read."""
        data = self._run.data
        return dict(data.label_maps) if data is not None else {}

    @property
    def soft_targets(self) -> bool:
        """Whether class targets are one-hot rows (a batch augmentation such as MixUp mixes them)."""
        return self._run.soft_targets

    def split_data(self, split: str) -> tuple[Any, Any]:
        """Model inputs and encoded targets of ``train``, ``validation`` or ``test``."""
        return self._run.split_data(split)

    def compile(self, model: keras.Model, optimizer: Any = None) -> None:
        """Compile ``model`` with the run's heads' losses and metrics, like the run's own model.

        Use it to evaluate a model with the same outputs (a teacher, a pruned copy) on the
        run's data.
        """
        from kplug.model.assembly import compile_model

        compile_model(model, self._run.heads, self._run.run, optimizer, soft=self._run.soft_targets)

    # -- where it runs ------------------------------------------------------

    @property
    def distribution(self) -> Distribution | None:
        """The run's ``Distribution`` (devices, processes, rank), once built."""
        return self._run.distribution

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run directory (rank 0; always true on one process)."""
        distribution = self._run.distribution
        return distribution is None or distribution.is_chief
