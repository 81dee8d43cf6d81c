"""The core loop: resolve components, build the model, run each training stage with ``Model.fit``.

kplug composes ``keras.Model.fit``; it never re-implements the train step. Each
stage is one ``fit`` call with its own trainable set, epochs, batch size and
learning rate. Plugin lifecycle hooks run only at fit, stage and epoch boundaries.
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

from kplug import rundir
from kplug.assembly import build_model
from kplug.config import RunConfig, StageConfig, dump_config, load_config, parse_config
from kplug.errors import PluginError
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
        metrics: final metrics on the test split (or validation when there is no test split).
        report: the contents of ``report.json``.
    """

    model: keras.Model
    history: dict[str, list[float]]
    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
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
    for override in plugins.manager.hook.kplug_configure(config=config):
        if override is None:
            continue
        if not isinstance(override, dict):
            raise PluginError(f"kplug_configure returned {type(override).__name__}; expected a dict or None.")
        config = parse_config({**config.model_dump(by_alias=True), **override})
    return config


class Trainer:
    """Train one run described by a config.

    Example::

        trainer = kplug.Trainer("run.yaml")
        result = trainer.fit()
        print(result.metrics["accuracy"], result.run_dir)

    Args:
        config: a path to YAML/JSON/TOML, a dict or a ``RunConfig``.
        plugins: extra plugin objects, or a ``Plugins`` from ``kplug.load_plugins``.
        output: overrides ``output.dir``.
    """

    def __init__(
        self,
        config: str | Path | dict[str, Any] | RunConfig,
        plugins: Plugins | list[Any] | None = None,
        output: str | Path | None = None,
    ) -> None:
        self.plugins = get_plugins(plugins)
        parsed = load_config(config)
        if output is not None:
            parsed = parsed.model_copy(
                update={"output": parsed.output.model_copy(update={"dir": str(output)})}
            )
        self.config = _configure(parsed, self.plugins)
        self.run: ResolvedRun = resolve(self.config, self.plugins)
        self.model: keras.Model | None = None
        self.heads: dict[str, Head] = {}
        self.data: PreparedData | None = None

    # -- building -----------------------------------------------------------

    def _inputs(self, split: str) -> tuple[np.ndarray, Any]:
        examples = getattr(self.data.splits, split)
        return examples.features, head_targets(self.run, examples, self.data.label_maps)

    def _compile(self, stage: StageConfig, steps: int) -> None:
        train = self.config.train
        rate = learning_rate_schedule(
            train.schedule, stage.learning_rate or train.optimizer.learning_rate, steps
        )
        losses = {i: h.loss(train.label_smoothing) for i, h in self.heads.items()}
        metrics = {i: h.metrics() for i, h in self.heads.items()}
        weights = {h.config.output_name: h.config.loss_weight for h in self.run.heads}
        single = len(self.heads) == 1
        self.model.compile(
            optimizer=build_optimizer(train.optimizer, rate),
            loss=next(iter(losses.values())) if single else losses,
            metrics=next(iter(metrics.values())) if single else metrics,
            loss_weights=None if single else weights,
        )

    def _callbacks(self, run_dir: Path, stage: int) -> list[keras.callbacks.Callback]:
        callbacks = [rundir.MetricsLog(run_dir / rundir.METRICS_FILE, stage)]
        callbacks += [chosen.build() for chosen in self.run.callbacks]
        if self.plugins.manager.hook.kplug_on_epoch_end.get_hookimpls():
            callbacks.append(_EpochHook(self))
        return callbacks

    # -- training -----------------------------------------------------------

    def fit(self) -> FitResult:
        """Train every stage and write the run directory.

        Returns:
            A ``FitResult`` with the model, the history and the run directory.
        """
        config = self.config
        keras.utils.set_random_seed(config.seed)
        self.data = prepare_data(self.run)
        run_dir = rundir.prepare_run_dir(config.run_dir(), config.output.overwrite)
        dump_config(config, run_dir / rundir.CONFIG_FILE)
        rundir.write_json(
            run_dir / rundir.LABELS_FILE, {t: m.to_dict() for t, m in self.data.label_maps.items()}
        )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        distribution = self.run.distribution.build()
        policy = self.run.precision.build()
        with dtype_policy(policy), distribution.scope():
            self.model, self.heads = build_model(
                self.run, self.data.input_shape, self.data.input_dtype, self.data.label_maps
            )
            init_report = self._init_weights()
            self.plugins.manager.hook.kplug_on_fit_start(trainer=self, model=self.model)
            history, stages = self._run_stages(run_dir)
            timings["train_seconds"] = time.perf_counter() - started
            metrics = self._final_metrics()
        rundir.save_model(self.model, run_dir / rundir.MODEL_FILE)
        rundir.plot_curves(run_dir / rundir.METRICS_FILE, run_dir / rundir.CURVES_FILE)
        timings["total_seconds"] = time.perf_counter() - started
        report = self._report(distribution.describe(), init_report, stages, metrics, timings)
        report["precision"] = str(getattr(policy, "name", policy))
        rundir.write_json(run_dir / rundir.REPORT_FILE, report)
        result = FitResult(self.model, history, run_dir, metrics, report)
        self.plugins.manager.hook.kplug_on_fit_end(trainer=self, result=result)
        return result

    def _init_weights(self) -> dict[str, Any] | None:
        init = self.config.model.backbone.init
        if init is None:
            return None
        return init_from_checkpoint(self.model, init.from_, init.map).summary()

    def _run_stages(self, run_dir: Path) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
        x, y = self._inputs("train")
        validation = self._inputs("validation") if len(self.data.splits.validation) else None
        history: dict[str, list[float]] = {}
        stages = []
        epoch = 0
        for index, stage in enumerate(self.config.train.resolved_stages()):
            batch_size = stage.batch_size or self.config.train.batch_size
            trainable = set_trainable(self.model, stage.trainable)
            self._compile(stage, math.ceil(len(x) / batch_size) * stage.epochs)
            fitted = self.model.fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epoch + stage.epochs,
                initial_epoch=epoch,
                validation_data=validation,
                callbacks=self._callbacks(run_dir, index + 1),
                verbose=self.config.train.verbose,
            )
            ran = len(fitted.epoch)
            epoch += ran
            for name, values in fitted.history.items():
                history.setdefault(name, []).extend(float(v) for v in values)
            stages.append(
                {
                    "stage": index + 1,
                    "epochs": ran,
                    "batch_size": batch_size,
                    "trainable": trainable,
                    "trainable_parameters": int(sum(np.prod(v.shape) for v in self.model.trainable_weights)),
                }
            )
        return history, stages

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
        init_report: dict[str, Any] | None,
        stages: list[dict[str, Any]],
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
            "distribution": placement,
            "data": {
                "train": len(splits.train),
                "validation": len(splits.validation),
                "test": len(splits.test),
                "labels": {t: m.names for t, m in self.data.label_maps.items()},
            },
            "parameters": int(self.model.count_params()),
            "init": init_report,
            "stages": stages,
            "metrics": metrics,
            "timings": timings,
        }


def fit(
    config: str | Path | dict[str, Any] | RunConfig,
    plugins: Plugins | list[Any] | None = None,
    output: str | Path | None = None,
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
    return Trainer(config, plugins=plugins, output=output).fit()
