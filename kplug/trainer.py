"""The core loop: resolve components, build the model, run each training stage with ``Model.fit``.

kplug composes ``keras.Model.fit``; it never re-implements the train step. Each
stage is one ``fit`` call with its own trainable set, epochs, batch size and
learning rate. Plugin lifecycle hooks run only at fit and epoch boundaries.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug import metrics, rundir
from kplug.assembly import build_model, compile_model, logged_metric_names
from kplug.checkpoint import Checkpoint, EpochCheckpoint, TrainingState, latest_checkpoint, write_checkpoint
from kplug.config import RunConfig, StageConfig, dump_config, load_config, parse_config
from kplug.errors import CheckpointError, ConfigError, DataError, PluginError
from kplug.head import Head
from kplug.inputs import PreparedData, head_targets, prepare_data
from kplug.optimizers import build_optimizer, learning_rate_schedule
from kplug.plugins import Plugins, get_plugins, kplug_version
from kplug.resolve import ResolvedRun, resolve
from kplug.transfer import init_from_checkpoint, set_trainable


@dataclass
class FitResult:
    """What ``kplug.fit`` returns.

    Attributes:
        model: the trained ``keras.Model``.
        history: every metric per epoch, over all stages.
        run_dir: the run directory.
        metrics: final metrics on the test split (or validation when there is no test
            split), with ``"split"`` naming which.
        report: the contents of ``report.json``.
    """

    model: keras.Model
    history: dict[str, list[float]]
    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


class _EpochHook(keras.callbacks.Callback):
    """Calls ``kplug_on_epoch_end`` at epoch boundaries (added only when a plugin implements it)."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.trainer.plugins.manager.hook.kplug_on_epoch_end(
            trainer=self.trainer, epoch=epoch, logs={k: float(v) for k, v in (logs or {}).items()}
        )


@contextlib.contextmanager
def dtype_policy(policy: Any) -> Iterator[None]:
    """Set the global Keras dtype policy for the duration of a run, then restore it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _configure(config: RunConfig, plugins: Plugins) -> RunConfig:
    """Let each ``kplug_configure`` plugin, in load order, adjust the config the previous one left."""
    for implementation in plugins.manager.hook.kplug_configure.get_hookimpls():
        override = implementation.function(config=config)
        if override is None:
            continue
        if not isinstance(override, dict):
            raise PluginError(
                f"kplug_configure of {implementation.plugin_name} returned {type(override).__name__}; "
                f"expected a dict or None."
            )
        config = parse_config({**config.model_dump(by_alias=True), **override})
    return config


class Trainer:
    """Train one run described by a config.

    Example::

        trainer = kplug.Trainer("run.yaml")
        result = trainer.fit()
        print(result.metrics["accuracy"], result.run_dir)

    Args:
        config: a path to YAML/JSON/TOML, a dict or a ``RunConfig``; ``None`` with
            ``resume`` takes the config saved in that run directory.
        plugins: extra plugin objects, or a ``Plugins`` from ``kplug.load_plugins``.
        output: overrides ``output.dir``.
        resume: a run directory to continue from its newest checkpoint.
    """

    def __init__(
        self,
        config: str | Path | dict[str, Any] | RunConfig | None = None,
        plugins: Plugins | list[Any] | None = None,
        output: str | Path | None = None,
        resume: str | Path | None = None,
    ) -> None:
        self.plugins = get_plugins(plugins)
        self.resume_dir = Path(resume) if resume is not None else None
        from_run_dir = False
        if self.resume_dir is not None:
            saved = self.resume_dir / rundir.CONFIG_FILE
            if not saved.is_file():
                raise CheckpointError(
                    f"--resume {str(self.resume_dir)!r}: not a kplug run directory ({rundir.CONFIG_FILE} is missing)."
                )
            from_run_dir = config is None
            config = saved if from_run_dir else config
            output = self.resume_dir
        if config is None:
            raise ConfigError(
                "No run config given: pass a config file, dict or RunConfig (or resume=RUN_DIR)."
            )
        parsed = load_config(config)
        if output is not None:
            parsed = parsed.model_copy(
                update={"output": parsed.output.model_copy(update={"dir": str(output)})}
            )
        self.config = _configure(parsed, self.plugins)
        self.run: ResolvedRun = resolve(self.config, self.plugins)
        source = self.run.dataset.component
        if self.resume_dir is not None and from_run_dir and source.extras.get("in_memory"):
            raise DataError(
                f"{self.resume_dir} was trained on in-memory data (source '{source.name}'), which is "
                f"not saved with the run: resume with the same config, kplug.fit(config, resume=...)."
            )
        self.run_dir = self.config.run_dir()
        self.model: keras.Model | None = None
        self.heads: dict[str, Head] = {}
        self.data: PreparedData | None = None
        self._fit_seconds = 0.0  # wall time inside Model.fit, all stages (report timings.fit_seconds)

    # -- building -----------------------------------------------------------

    def _inputs(self, split: str) -> tuple[np.ndarray, Any]:
        examples = getattr(self.data.splits, split)
        return examples.features, head_targets(self.run, examples, self.data.label_maps)

    def _compile(self, stage: StageConfig, steps: int) -> None:
        train = self.config.train
        rate = learning_rate_schedule(
            train.schedule, stage.learning_rate or train.optimizer.learning_rate, steps
        )
        compile_model(self.model, self.heads, self.run, build_optimizer(train.optimizer, rate))

    def _callbacks(self, state: TrainingState) -> list[keras.callbacks.Callback]:
        callbacks: list[keras.callbacks.Callback] = [
            metrics.MetricsLog(self.run_dir / rundir.METRICS_FILE, state.stage + 1)
        ]
        callbacks += [chosen.build() for chosen in self.run.callbacks]
        if self.plugins.manager.hook.kplug_on_epoch_end.get_hookimpls():
            callbacks.append(_EpochHook(self))
        every = self.config.output.checkpoint_every
        if every:  # last, so a checkpoint is written only after the epoch's metrics row
            callbacks.append(
                EpochCheckpoint(self.run_dir, state.stage, state.stage_start, state.stages, state.init, every)
            )
        return callbacks

    # -- training -----------------------------------------------------------

    def _checkpoint_to_resume(self) -> Checkpoint | None:
        if self.resume_dir is None:
            return None
        checkpoint = latest_checkpoint(self.run_dir)
        stages = len(self.config.train.resolved_stages())
        if checkpoint is not None and checkpoint.state.stage >= stages:
            raise ConfigError(
                f"--resume {str(self.run_dir)!r}: the run has finished all {stages} stage(s); nothing to resume."
            )
        return checkpoint

    def _check_stages(self) -> None:
        """Fail on a bad trainable pattern or callback option before anything is written."""
        for stage in self.config.train.resolved_stages():
            set_trainable(self.model, stage.trainable)
        has_validation = len(self.data.splits.validation) > 0
        logged = logged_metric_names(self.heads, validation=has_validation)
        for index, chosen in enumerate(self.run.callbacks):
            chosen.build()
            monitor = chosen.options.get("monitor")
            if monitor is not None and monitor not in logged:
                raise ConfigError(
                    f"callbacks[{index}].options.monitor = {monitor!r}: this run logs {', '.join(logged)}"
                    + ("" if has_validation else " (val_* needs data.split.validation > 0)")
                    + "."
                )

    def _open_run_dir(self, checkpoint: Checkpoint | None) -> None:
        """Create the run directory, or trim an interrupted one back to its checkpoint."""
        if self.resume_dir is None:
            rundir.prepare_run_dir(self.run_dir, self.config.output.overwrite)
            dump_config(self.config, self.run_dir / rundir.CONFIG_FILE)
            rundir.write_json(
                self.run_dir / rundir.LABELS_FILE,
                {t: m.to_dict() for t, m in self.data.label_maps.items()},
            )
            return
        epochs = checkpoint.state.epoch if checkpoint else 0
        metrics.truncate_metrics(self.run_dir / rundir.METRICS_FILE, epochs)

    def fit(self) -> FitResult:
        """Train every stage and write the run directory (or continue it with ``resume``).

        Everything is built and checked before the run directory is created, so a bad
        config or data file leaves nothing behind.

        Returns:
            A ``FitResult`` with the model, the history and the run directory.
        """
        config = self.config
        keras.utils.set_random_seed(config.seed)
        self.data = prepare_data(self.run)
        checkpoint = self._checkpoint_to_resume()
        timings: dict[str, float] = {}
        started = time.perf_counter()
        distribution = self.run.distribution.build()
        policy = self.run.precision.build()
        with dtype_policy(policy), distribution.scope():
            self.model, self.heads = build_model(
                self.run, self.data.input_shape, self.data.input_dtype, self.data.label_maps
            )
            if checkpoint is None:
                state = TrainingState(0, 0, 0, [], self._init_weights())
            else:
                state = checkpoint.state
            self._check_stages()
            self._open_run_dir(checkpoint)
            if checkpoint is not None:
                print(f"Resuming {self.run_dir} at stage {state.stage + 1}, epoch {state.epoch + 1}.")
            self.plugins.manager.hook.kplug_on_fit_start(trainer=self, model=self.model)
            self._fit_seconds = 0.0
            state = self._run_stages(state, checkpoint)
            timings["train_seconds"] = time.perf_counter() - started
            timings["fit_seconds"] = self._fit_seconds
            final_metrics = self._final_metrics()
        rundir.save_model(self.model, self.run_dir / rundir.MODEL_FILE)
        metrics.plot_curves(self.run_dir / rundir.METRICS_FILE, self.run_dir / rundir.CURVES_FILE)
        timings["total_seconds"] = time.perf_counter() - started
        report = self._report(distribution.describe(), policy, state, final_metrics, timings)
        rundir.write_json(self.run_dir / rundir.REPORT_FILE, report)
        history = metrics.metrics_history(self.run_dir / rundir.METRICS_FILE)
        result = FitResult(self.model, history, self.run_dir, final_metrics, report)
        self.plugins.manager.hook.kplug_on_fit_end(trainer=self, result=result)
        return result

    def evaluate(self, data: str | dict[str, Any] | None = None, split: str = "test") -> dict[str, float]:
        """Evaluate the trained run (see ``kplug.evaluate``); call after ``fit``."""
        from kplug.prediction import evaluate

        return evaluate(self.run_dir, data=data, split=split, plugins=self.plugins)

    def predict(self, data: str | dict[str, Any] | None = None, split: str = "test") -> list[dict[str, Any]]:
        """Predict with the trained run (see ``kplug.predict``); call after ``fit``."""
        from kplug.prediction import predict

        return predict(self.run_dir, data=data, split=split, plugins=self.plugins)

    def _init_weights(self) -> dict[str, Any] | None:
        init = self.config.model.backbone.init
        if init is None:
            return None
        return init_from_checkpoint(self.model, init.from_, init.map).summary()

    def _restore(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint's weights (and optimizer state when the model is compiled)."""
        try:
            self.model.load_weights(checkpoint.model_file)
        except Exception as error:
            raise CheckpointError(
                f"{checkpoint.model_file}: cannot restore this checkpoint into the run's model "
                f"({type(error).__name__}: {error})."
            ) from None

    def _run_stages(self, state: TrainingState, checkpoint: Checkpoint | None) -> TrainingState:
        x, y = self._inputs("train")
        validation = self._inputs("validation") if len(self.data.splits.validation) else None
        stages = self.config.train.resolved_stages()
        for index in range(state.stage, len(stages)):
            stage = stages[index]
            batch_size = stage.batch_size or self.config.train.batch_size
            mid_stage = checkpoint is not None and state.epoch > state.stage_start
            if checkpoint is not None and not mid_stage:
                self._restore(checkpoint)  # a stage boundary: weights only, the stage gets a new optimizer
            trainable = set_trainable(self.model, stage.trainable)
            self._compile(stage, math.ceil(len(x) / batch_size) * stage.epochs)
            if mid_stage:
                self.model.optimizer.build(self.model.trainable_variables)
                self._restore(checkpoint)  # weights and this stage's optimizer state
            if checkpoint is None:
                state = TrainingState(index, state.epoch, state.epoch, state.stages, state.init)
            checkpoint = None
            end = state.stage_start + stage.epochs
            if end > state.epoch:
                fit_started = time.perf_counter()
                self.model.fit(
                    x,
                    y,
                    batch_size=batch_size,
                    epochs=end,
                    initial_epoch=state.epoch,
                    validation_data=validation,
                    callbacks=self._callbacks(state),
                    verbose=self.config.train.verbose,
                )
                self._fit_seconds += time.perf_counter() - fit_started
            epoch = metrics.last_epoch(self.run_dir / rundir.METRICS_FILE)
            summary = {
                "stage": index + 1,
                "epochs": epoch - state.stage_start,
                "batch_size": batch_size,
                "trainable": trainable,
                "trainable_parameters": int(sum(np.prod(v.shape) for v in self.model.trainable_weights)),
            }
            state = TrainingState(index + 1, epoch, epoch, [*state.stages, summary], state.init)
            write_checkpoint(self.run_dir, self.model, state)
        return state

    def _final_metrics(self) -> dict[str, float]:
        split = (
            "test"
            if len(self.data.splits.test)
            else "validation"
            if len(self.data.splits.validation)
            else None
        )
        if split is None:
            return {}
        x, y = self._inputs(split)
        batch_size = self.config.train.batch_size
        values = self.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        return {"split": split, **{k: float(v) for k, v in values.items()}}

    def _report(
        self,
        placement: dict[str, Any],
        policy: Any,
        state: TrainingState,
        metrics: dict[str, Any],
        timings: dict[str, float],
    ) -> dict[str, Any]:
        splits = self.data.splits
        return {
            "name": self.config.name,
            "backend": keras.backend.backend(),
            "versions": {
                "kplug": kplug_version(),
                "keras": keras.__version__,
                "python": platform.python_version(),
                "plugins": self.plugins.versions(),
            },
            "seed": self.config.seed,
            "precision": str(getattr(policy, "name", policy)),
            "distribution": placement,
            "data": {
                "train": len(splits.train),
                "validation": len(splits.validation),
                "test": len(splits.test),
                "labels": {t: m.names for t, m in self.data.label_maps.items()},
            },
            "parameters": int(self.model.count_params()),
            "init": state.init,
            "stages": state.stages,
            "metrics": metrics,
            "timings": timings,
        }


def fit(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    plugins: Plugins | list[Any] | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
) -> FitResult:
    """Train a run from a config file path, a dict or a ``RunConfig``.

    Example::

        result = kplug.fit({
            "data": {"source": "arrays", "options": {"x": x, "y": y}},
            "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
            "train": {"epochs": 3},
            "output": {"dir": "runs/demo"},
        })
        result.model, result.history, result.run_dir
    """
    return Trainer(config, plugins=plugins, output=output, resume=resume).fit()
