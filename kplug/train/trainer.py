"""The core loop: resolve components, build the model, run each training stage with ``Model.fit``.

kplug composes ``keras.Model.fit``; it never re-implements the train step. Each
stage is one ``fit`` call with its own trainable set, epochs, batch size and
learning rate. Plugin lifecycle hooks run only at fit and epoch boundaries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug.backend.cpu_matmul import onednn_matmul
from kplug.backend.jax_compile_cache import use_jax_compilation_cache
from kplug.config.held_out import with_held_out_arrays
from kplug.config.load import dump_config, load_config
from kplug.config.schema import RunConfig
from kplug.data.batches import TrainingBatches
from kplug.data.example_set import Examples
from kplug.data.inputs import PreparedData, head_targets, model_inputs, prepare_data
from kplug.data.padding import evaluation_batches, padding_note
from kplug.data.stream_batches import StreamBatches
from kplug.data.streams import describe as describe_stream
from kplug.data.weights import example_weights, stream_class_weight
from kplug.distribute.build import build_distribution
from kplug.errors import CheckpointError, ConfigError, DataError, PluginError
from kplug.model.assembly import (
    build_batch_transforms,
    build_model,
    compile_model,
    is_batch_augmentation,
)
from kplug.model.checkpoint_init import init_from_checkpoint
from kplug.model.features import HeadsOnFeatures
from kplug.model.freezing import apply_stage_trainable
from kplug.model.python_objects import portable_config, save_python_backbone
from kplug.model.rates import apply_rate_multipliers, rate_multipliers, summarise_rates
from kplug.plugin.context import RunContext
from kplug.plugin.distribution import Distribution
from kplug.plugin.head import Head
from kplug.plugin.manager import Plugins, get_plugins
from kplug.plugin.precision import Precision, as_precision
from kplug.plugin.resolve import ResolvedRun, resolve
from kplug.train import metrics_file, rundir
from kplug.train.best_model import BestModelSaver
from kplug.train.checkpoint import (
    Checkpoint,
    Checkpointer,
    RestoreMetrics,
    StepCheckpointer,
    TrainingState,
    seed_layer_generators,
    write_checkpoint,
)
from kplug.train.curves import plot_curves
from kplug.train.feature_cache import CacheDecision, CachedSplits, stage_cache
from kplug.train.input_path import fit_input
from kplug.train.interrupt import InterruptCheckpointer, InterruptRequest
from kplug.train.nonfinite import NonFiniteLossGuard, guard_optimizer, skipped_updates
from kplug.train.optimizers import (
    build_optimizer,
    carry_optimizer_state,
    learning_rate_schedule,
    stage_schedule,
)
from kplug.train.preflight import check_batches, check_monitors
from kplug.train.progress import EpochCounter, epoch_progress, fit_verbose, progress_mode, stage_line
from kplug.train.report import run_report
from kplug.train.resume import check_same_run, checkpoint_to_resume
from kplug.train.run_warnings import collect_warnings
from kplug.train.stage_plan import StagePlan, plan_stages
from kplug.train.storage import PushAfterCheckpoints, RemoteRunDir, is_url, local_copy


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
        self.plugins = trainer.plugins
        self.context = trainer.context

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.plugins.call_hook(
            "kplug_on_epoch_end",
            run=self.context,
            epoch=epoch,
            logs={k: float(v) for k, v in (logs or {}).items()},
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

    Attributes:
        stage_plans: every stage's resolved settings (``kplug.train.stage_plan.StagePlan``), built
            once from the final config; the stage loop and ``report.json`` read them.
    """

    def __init__(
        self,
        config: str | Path | dict[str, Any] | RunConfig | None = None,
        plugins: Plugins | list[Any] | None = None,
        output: str | Path | None = None,
        resume: str | Path | None = None,
    ) -> None:
        self.plugins = get_plugins(plugins)
        # a run directory at an fsspec URL: trained in a local staging copy, uploaded as it goes
        self.remote: RemoteRunDir | None = None
        if is_url(resume):
            self.remote = RemoteRunDir(str(resume), "--resume")
            resume = self.remote.pull()
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
            output = self.resume_dir if self.remote is None else self.remote.url
        if config is None:
            raise ConfigError(
                "No run config given: pass a config file, dict or RunConfig (or resume=RUN_DIR)."
            )
        parsed = load_config(config)
        if output is not None:
            parsed = parsed.model_copy(
                update={"output": parsed.output.model_copy(update={"dir": str(output)})}
            )
        self.config = self.plugins.configure(parsed)
        if self.resume_dir is not None and not from_run_dir:
            check_same_run(
                self.resume_dir / rundir.CONFIG_FILE, portable_config(self.config, self.resume_dir)
            )
        # every stage's settings, resolved once: the stage loop, the report and plugins read these
        self.stage_plans: tuple[StagePlan, ...] = plan_stages(self.config.train)
        self.run: ResolvedRun = resolve(self.config, self.plugins)
        source = self.run.dataset.component
        if self.resume_dir is not None and from_run_dir and source.extra("in_memory"):
            raise DataError(
                f"{self.resume_dir} was trained on in-memory data (source '{source.name}'), which is "
                f"not saved with the run: resume with the same config, kplug.fit(config, resume=...)."
            )
        if self.remote is None and is_url(self.config.output.dir):
            self.remote = RemoteRunDir(self.config.output.dir)
            self.remote.start_new(self.config.output.overwrite)
        self.run_dir = self.config.run_dir() if self.remote is None else self.remote.staging
        self.model: keras.Model | None = None
        # what compile/fit/checkpoints use when a plugin wraps the model (kplug_training_model)
        self.training_model: keras.Model | None = None
        self.heads: dict[str, Head] = {}
        self.data: PreparedData | None = None
        # MixUp-style batch augmentations mix labels: class targets become one-hot (soft) rows
        self.soft_targets = any(is_batch_augmentation(chosen) for chosen in self.run.augmentations)
        self.loggers: list[keras.callbacks.Callback] = []
        self.restored_trainable: list[str] = []
        self.precision: Precision = Precision()
        self.distribution: Distribution | None = None
        self._fit_seconds = 0.0  # wall time inside Model.fit, all stages (report timings.fit_seconds)
        self._interrupt: InterruptRequest | None = None  # Ctrl-C while training: checkpoint, then stop
        self._resumed_metrics: list[Any] = []  # metric sums of an epoch resumed mid-way
        self._cached = CachedSplits()  # the frozen backbone's features (train.cache_features)
        self._restarted_epoch: str | None = None  # a stream that cannot seek resumed at its epoch's start
        self.context = RunContext(self)  # what lifecycle hooks see of this run (read-only)

    # -- building -----------------------------------------------------------

    def _targets(self, split: str) -> Any:
        examples = getattr(self.data.splits, split)
        return head_targets(self.run, examples, self.data.label_maps, one_hot=self.soft_targets)

    def _example_weights(self) -> np.ndarray | None:
        """Each training example's loss weight from ``train.class_weight`` and ``data.sample_weight``."""
        heads = [(head.config.output_name, head.config.target) for head in self.run.heads]
        return example_weights(
            self.data.splits.train,
            self.config.train.class_weight,
            self.config.data.sample_weight,
            heads,
            self.data.label_maps,
        )

    def split_data(self, split: str) -> tuple[Any, Any]:
        """Model inputs and encoded targets of ``train``, ``validation`` or ``test`` (after ``fit`` starts)."""
        return self.data.inputs(split), self._targets(split)

    def _fitted(self) -> keras.Model:
        """The model that is compiled, fitted and checkpointed: a plugin's training model or the run's."""
        return self.model if self.training_model is None else self.training_model

    def _build_training_model(self) -> None:
        """Let a plugin wrap the model for training (``kplug_training_model``), e.g. a distiller."""
        self.training_model = self.plugins.call_hook(
            "kplug_training_model", run=self.context, model=self.model
        )
        if self.training_model is None and self.config.distill is not None:
            raise PluginError(
                "distill: this run config asks for knowledge distillation, but no installed plugin "
                "implements it (kplug_training_model). Install kplug-compress or remove the distill section."
            )

    def _compile_stage(self, index: int, offset: int) -> tuple[keras.optimizers.Optimizer, dict[str, float]]:
        """Compile the model for stage ``index`` with its optimizer, schedule and per-layer rates."""
        plan = self.stage_plans[index]
        updates = plan.updates_per_epoch(len(self.data.splits.train)) * plan.epochs
        rate = learning_rate_schedule(plan.schedule, plan.learning_rate, updates)
        # sized in updates: evaluated at the stage's update, not Keras' micro-batch counter
        rate = stage_schedule(rate, plan.accumulation, offset)
        optimizer = self.precision.wrap_optimizer(build_optimizer(plan.optimizer, rate))
        optimizer = guard_optimizer(optimizer, self.config.train.on_nonfinite)  # skip_batch: a wrapper
        compile_model(
            self._fitted(), self.heads, self.run, optimizer, soft=self.soft_targets, padded=self._padded()
        )
        multipliers = self._rate_multipliers(index)
        # a loss-scale wrapper (float16) delegates the update to its inner optimizer
        apply_rate_multipliers(getattr(optimizer, "inner_optimizer", optimizer), self.model, multipliers)
        optimizer.build(self._fitted().trainable_variables)
        self.distribution.prepare_stage(self.model)
        return optimizer, multipliers

    def _rate_multipliers(self, index: int) -> dict[str, float]:
        """Each trainable variable's learning-rate multiplier in stage ``index``."""
        plan = self.stage_plans[index]
        return rate_multipliers(
            self.model, plan.learning_rate, plan.rates.per_layer, plan.rates.layer_decay, plan.where
        )

    def _progress_mode(self) -> str:
        """How this process shows training: only the chief prints (``kplug.train.progress``)."""
        return progress_mode(self.config.train.verbose) if self.distribution.is_chief else "quiet"

    def _print_stage_line(self, index: int, stage_report: dict[str, Any]) -> None:
        if self._progress_mode() == "quiet":
            return
        params = int(sum(np.prod(v.shape) for v in self.model.trainable_weights))
        line = stage_line(
            self.stage_plans[index], len(self.stage_plans), params, stage_report.get("learning_rates")
        )
        print(line, flush=True)

    def _callbacks(self, state: TrainingState, first_batch: int) -> list[keras.callbacks.Callback]:
        total_epochs = sum(plan.epochs for plan in self.stage_plans)
        counter = EpochCounter(self.stage_plans[state.stage], state.stage_start, total_epochs)
        callbacks: list[keras.callbacks.Callback] = [
            *self.distribution.callbacks(),  # first: e.g. averaging logs over processes
            metrics_file.MetricsLog(self.run_dir / rundir.METRICS_FILE, state.stage + 1),
            *epoch_progress(self._progress_mode(), counter),
        ]
        if self.config.train.on_nonfinite == "stop":  # before any checkpointer: a nan batch is never saved
            callbacks.append(NonFiniteLossGuard(self.run_dir, state, first_batch))
        if first_batch and self._resumed_metrics:
            callbacks.append(RestoreMetrics(self._resumed_metrics))
            self._resumed_metrics = []
        callbacks += [chosen.build() for chosen in self.run.callbacks]
        callbacks += self.loggers  # built once per run, so one log spans every stage
        output = self.config.output
        if output.save_best:
            callbacks.append(
                BestModelSaver(self.run_dir, output.save_best, output.save_best_mode, state.stage)
            )
        if self.plugins.implements("kplug_on_epoch_end"):
            callbacks.append(_EpochHook(self))
        if output.checkpoint_every or output.checkpoint_every_steps:
            # last, so an epoch checkpoint is written only after the epoch's metrics row
            checkpointer = StepCheckpointer if output.checkpoint_every_steps else Checkpointer
            callbacks.append(
                checkpointer(
                    self.run_dir,
                    state,
                    first_batch,
                    output.checkpoint_every,
                    output.checkpoint_every_steps,
                    self.stage_plans[state.stage].accumulation,
                    output.keep_checkpoints,
                )
            )
        if self._interrupt is not None and self._interrupt.enabled:
            callbacks.append(
                InterruptCheckpointer(
                    self._interrupt,
                    self.run_dir,
                    state,
                    first_batch,
                    self.stage_plans[state.stage].accumulation,
                    output.keep_checkpoints,
                )
            )
        if self._pushes_run_dir():  # last: uploads what the checkpointers wrote
            callbacks.append(
                PushAfterCheckpoints(self.remote, after_batches=bool(output.checkpoint_every_steps))
            )
        return callbacks

    # -- training -----------------------------------------------------------

    def _check_stages(self) -> None:
        """Fail on a bad trainable pattern, rate rule, batch size or callback option before anything is written."""
        for plan in self.stage_plans:
            apply_stage_trainable(self.model, plan.trainable, plan.where)
            self._rate_multipliers(plan.index)
            self._cache_decision(plan)  # cache_features: true fails here, before the run directory
        check_batches(self.distribution, self.data.splits, self.stage_plans, self.config.train.batch_size)
        for chosen in self.run.callbacks:
            chosen.build()
        check_monitors(self.heads, self.run.callbacks, self.config.output.save_best, self.data.splits)

    def _open_run_dir(self, checkpoint: Checkpoint | None) -> None:
        """Create the run directory, or trim an interrupted one back to its checkpoint."""
        if self.resume_dir is None:
            rundir.prepare_run_dir(self.run_dir, self.config.output.overwrite)
            save_python_backbone(self.config, self.run_dir)
            dump_config(portable_config(self.config, self.run_dir), self.run_dir / rundir.CONFIG_FILE)
            rundir.write_json(
                self.run_dir / rundir.LABELS_FILE,
                {t: m.to_dict() for t, m in self.data.label_maps.items()},
            )
            if self.data.categories:
                rundir.write_json(self.run_dir / rundir.CATEGORIES_FILE, self.data.categories)
            return
        epochs = checkpoint.state.epoch if checkpoint else 0
        metrics_file.truncate_metrics(self.run_dir / rundir.METRICS_FILE, epochs)

    def fit(self) -> FitResult:
        """Train every stage and write the run directory (or continue it with ``resume``).

        Everything is built and checked before the run directory is created, so a bad
        config or data file leaves nothing behind.

        Returns:
            A ``FitResult`` with the model, the history and the run directory. Python warnings
            raised meanwhile are counted in ``report.json`` (``warnings``), not printed.
        """
        with collect_warnings() as self._warnings:
            try:
                return self._fit()
            finally:  # a failed or stopped run keeps its checkpoints at the URL too
                if self._pushes_run_dir():
                    self.remote.push()

    def _pushes_run_dir(self) -> bool:
        """Whether this process uploads the run directory (its URL's staging copy): the chief."""
        return self.remote is not None and (self.distribution is None or self.distribution.is_chief)

    def _fit(self) -> FitResult:
        config = self.config
        use_jax_compilation_cache()  # before anything compiles
        keras.utils.set_random_seed(config.seed)
        self.data = prepare_data(self.run)
        checkpoint = (
            None if self.resume_dir is None else checkpoint_to_resume(self.run_dir, len(self.stage_plans))
        )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        distribution = self.distribution = build_distribution(self.run.distribution, self.plugins)
        if self.data.stream is not None and distribution.processes > 1:
            raise ConfigError(
                f"data.source = {self.config.data.source!r} streams its examples, which kplug does not shard "
                f"over {distribution.processes} processes yet; train in one process or give arrays."
            )
        chief_run_dir = self.run_dir
        if not distribution.is_chief:  # only rank 0 writes the run directory
            self.run_dir = Path(tempfile.mkdtemp(prefix=f"kplug-rank{distribution.rank}-")) / "run"
        self.precision = as_precision(self.run.precision.build())
        with dtype_policy(self.precision.policy), distribution.scope():
            self.model, self.heads = build_model(
                self.run, self.data.spec, self.data.label_maps, self.data.preprocess
            )
            self.precision.configure_model(self.model)  # e.g. float32 islands, before weights load
            seed_layer_generators(self.model, config.seed)
            distribution.check_model(self.model)
            if checkpoint is None:
                state = TrainingState(0, 0, 0, [], self._init_weights())
            else:
                state = checkpoint.state
            self._check_stages()
            self.loggers = self._build_loggers()
            self._open_run_dir(checkpoint)
            if checkpoint is not None:
                print(f"Resuming {self.run_dir} at stage {state.stage + 1}, epoch {state.epoch + 1}.")
            self.plugins.call_hook("kplug_on_fit_start", run=self.context, model=self.model)
            self._build_training_model()
            self._fit_seconds = 0.0
            with InterruptRequest(enabled=distribution.processes == 1) as self._interrupt, onednn_matmul():
                state = self._run_stages(state, checkpoint)
            self._interrupt = None
            timings["train_seconds"] = time.perf_counter() - started
            timings["fit_seconds"] = self._fit_seconds
            timings["feature_seconds"] = self._cached.seconds  # computing cached features, all stages
            final_metrics = self._final_metrics()
        rundir.save_model(self.model, self.run_dir / rundir.MODEL_FILE)
        plot_curves(self.run_dir / rundir.METRICS_FILE, self.run_dir / rundir.CURVES_FILE)
        timings["total_seconds"] = time.perf_counter() - started
        report = run_report(
            config=self.config,
            plugins=self.plugins,
            model=self.model,
            data=self.data,
            precision=self.precision,
            placement=self._placement(),
            state=state,
            metrics=final_metrics,
            timings=timings,
            run_dir=self.run_dir,
            warnings=self._warnings.summary(),
        )
        if self.data.stream is not None:
            report["data"]["stream"] = describe_stream(self.data.stream, self.config.data.source)
            if self._restarted_epoch:
                report["data"]["stream"]["resumed"] = self._restarted_epoch
        rundir.write_json(self.run_dir / rundir.REPORT_FILE, report)
        history = metrics_file.metrics_history(self.run_dir / rundir.METRICS_FILE)
        result = FitResult(self.model, history, self.run_dir, final_metrics, report)
        if not distribution.is_chief:
            shutil.rmtree(self.run_dir.parent, ignore_errors=True)
            self.run_dir = result.run_dir = chief_run_dir
        for logger in self.loggers:
            if hasattr(logger, "on_run_end"):
                logger.on_run_end(result)
        self.plugins.call_hook("kplug_on_fit_end", run=self.context, result=result)
        return result

    def evaluate(self, data: str | dict[str, Any] | None = None, split: str = "test") -> dict[str, float]:
        """Evaluate the trained run (see ``kplug.evaluate``); call after ``fit``."""
        from kplug.inference.prediction import evaluate

        return evaluate(self.run_dir, data=data, split=split, plugins=self.plugins)

    def predict(self, data: str | dict[str, Any] | None = None, split: str = "test") -> list[dict[str, Any]]:
        """Predict with the trained run (see ``kplug.predict``); call after ``fit``."""
        from kplug.inference.prediction import predict

        return predict(self.run_dir, data=data, split=split, plugins=self.plugins)

    def _build_loggers(self) -> list[keras.callbacks.Callback]:
        """Build the config's loggers once for the whole run (they must not write yet)."""
        return [chosen.build(run_dir=self.run_dir, run_config=self.config) for chosen in self.run.loggers]

    def _init_weights(self) -> dict[str, Any] | None:
        init = self.config.model.backbone.init
        if init is None:
            return None
        report = init_from_checkpoint(
            self.model, local_copy(init.from_, "model.backbone.init.from"), init.map, init.strict
        )
        print(report.describe())
        return report.summary()

    def _restore(self, checkpoint: Checkpoint) -> keras.optimizers.Optimizer:
        """Rebuild the stage that wrote ``checkpoint`` and load its weights, optimizer and RNG state."""
        state = checkpoint.state
        mid_stage = state.epoch > state.stage_start or state.batch > 0
        writer = state.stage if mid_stage else state.stage - 1
        self.restored_trainable = self._apply_stage(writer)
        optimizer, _ = self._compile_stage(writer, state.step_offset)
        try:
            self._fitted().load_weights(checkpoint.model_file)
        except Exception as error:
            raise CheckpointError(
                f"{checkpoint.model_file}: cannot restore this checkpoint into the run's model "
                f"({type(error).__name__}: {error}). Was the run directory written by another config?"
            ) from None
        checkpoint.restore_rng(self._fitted())
        self._resumed_metrics = checkpoint.metric_states() if state.batch else []
        return optimizer

    def _apply_stage(self, index: int) -> list[str]:
        """Set stage ``index``'s trainable layers, then let plugins adjust them (``kplug_on_stage_start``)."""
        plan = self.stage_plans[index]
        trainable = apply_stage_trainable(self.model, plan.trainable, plan.where)
        self.plugins.call_hook("kplug_on_stage_start", run=self.context, model=self.model, stage=index)
        return trainable

    def _start_stage(
        self, index: int, previous: keras.optimizers.Optimizer | None, trained_before: set[int]
    ) -> tuple[int, dict[str, Any]]:
        """Set the stage's trainable layers and compile it; carry optimizer state when it makes sense.

        Returns:
            The optimizer step the stage's schedule counts from, and the report entries.
        """
        plan = self.stage_plans[index]
        trainable = self._apply_stage(index)
        now = {id(v) for v in self._fitted().trainable_variables}
        same_settings = index > 0 and plan.optimizer == self.stage_plans[index - 1].optimizer
        carry = previous is not None and (
            plan.optimizer_state == "carry"
            or (plan.optimizer_state == "auto" and same_settings and now <= trained_before)
        )
        # updates, not micro-batches: Keras' iterations divides by gradient_accumulation_steps
        offset = int(keras.ops.convert_to_numpy(previous.iterations)) if carry else 0
        optimizer, multipliers = self._compile_stage(index, offset)
        carried = (
            carry_optimizer_state(previous, optimizer, self._fitted().trainable_variables) if carry else 0
        )
        base_rate = plan.learning_rate
        report = {
            "trainable": trainable,
            "optimizer": plan.optimizer.name,
            "learning_rate": base_rate,
            "optimizer_state": f"carried for {carried} variables" if carry else "fresh",
        }
        if any(m != 1.0 for m in multipliers.values()):
            report["learning_rates"] = summarise_rates(multipliers, base_rate)
        return offset, report

    def _training_batches(
        self, plan: StagePlan, epoch: int, skip: int, transforms: list[Any], features: Any
    ) -> TrainingBatches:
        """One ``fit`` call's training batches: from the arrays (or their cached ``features``) in a
        seeded order, or from the stream."""
        stream = self.data.stream
        if stream is None:
            _, y = self._train_arrays
            return TrainingBatches(
                features,
                y,
                plan.batch_size,
                self.config.seed,
                epoch,
                skip,
                plan.accumulation,
                transforms,
                self._weights,
                self.distribution.batch_multiple("train"),
            )
        weighted = self.config.train.class_weight is not None or self.config.data.sample_weight is not None
        batches = StreamBatches(
            stream,
            self._encode_stream_rows,
            plan.batch_size,
            self.config.seed,
            epoch,
            skip,
            plan.accumulation,
            transforms,
            weighted,
        )
        batches.multiple = self.distribution.batch_multiple("train")
        return batches

    def _encode_stream_rows(self, chunk: Any) -> tuple[Any, Any, np.ndarray | None]:
        """A streamed batch as model inputs, encoded targets and loss weights."""
        examples = Examples(chunk.x, chunk.targets)
        inputs = model_inputs(self.data.preprocess, chunk.x, f"data ({self.data.stream.source})")
        targets = head_targets(self.run, examples, self.data.label_maps, one_hot=self.soft_targets)
        heads = [(head.config.output_name, head.config.target) for head in self.run.heads]
        weights = example_weights(
            examples, self._stream_class_weight, self.config.data.sample_weight, heads, self.data.label_maps
        )
        return inputs, targets, weights

    def _resume_point(self, epoch: int, skip: int) -> int:
        """The batch a resumed epoch starts at: 0 for a stream that cannot seek (said in the report)."""
        stream = self.data.stream
        if not skip or stream is None or stream.seekable:
            return skip
        self._restarted_epoch = (
            f"the run resumed at the start of epoch {epoch + 1}, not at batch {skip + 1} where it stopped: "
            f"the {stream.source} cannot be read from the middle, so the first {skip} batches of that "
            f"epoch were trained again"
        )
        warnings.warn(f"kplug: {self._restarted_epoch}.", UserWarning, stacklevel=2)
        print(f"kplug: {self._restarted_epoch}.")
        self._resumed_metrics = []
        return 0

    def _run_stages(self, state: TrainingState, checkpoint: Checkpoint | None) -> TrainingState:
        if self.data.stream is None:
            self._train_arrays = self.split_data("train")
            self._weights = self._example_weights()
        else:
            self._stream_class_weight = stream_class_weight(
                self.config.train.class_weight, self.run, self.data
            )
        validation = self.split_data("validation") if len(self.data.splits.validation) else None
        transforms = build_batch_transforms(self.run)
        previous, trained_before = None, set()
        if checkpoint is not None:
            previous = self._restore(checkpoint)
            trained_before = {id(v) for v in self._fitted().trainable_variables}
        for plan in self.stage_plans[state.stage :]:
            index = plan.index
            resuming_here = checkpoint is not None and index == state.stage
            if resuming_here and (state.epoch > state.stage_start or state.batch > 0):
                stage_report = self._resumed_stage_report(index, state)
            else:
                offset, stage_report = self._start_stage(index, previous, trained_before)
                state = TrainingState(index, state.epoch, state.epoch, state.stages, state.init, 0, offset)
            decision = self._cache_decision(plan)
            x = None if self.data.stream is not None else self._train_arrays[0]
            fitted, stage_x, stage_validation = self._stage_inputs(plan, decision, x, validation)
            stage_report["feature_cache"] = decision.report()
            self._print_stage_line(index, stage_report)
            end = state.stage_start + plan.epochs
            epoch, skip = state.epoch, self._resume_point(state.epoch, state.batch)
            while epoch < end:
                stop = epoch + 1 if skip else end  # the rest of an interrupted epoch is a fit of its own
                fit_started = time.perf_counter()
                batches = self._training_batches(plan, epoch, skip, transforms, stage_x)
                fitted.fit(
                    fit_input(batches, self.distribution),  # the batch stream, or it as tf.data
                    epochs=stop,
                    initial_epoch=epoch,
                    steps_per_epoch=batches.batches_per_epoch - skip,
                    shuffle=False,
                    validation_data=self._evaluation_data("validation", stage_validation, plan.batch_size),
                    callbacks=self._callbacks(dataclasses.replace(state, epoch=epoch, batch=skip), skip),
                    verbose=fit_verbose(self._progress_mode()),
                )
                self._fit_seconds += time.perf_counter() - fit_started
                reached = metrics_file.last_epoch(self.run_dir / rundir.METRICS_FILE)
                if reached < stop:  # a callback (early stopping) ended the stage
                    break
                epoch, skip = reached, 0
            epoch = metrics_file.last_epoch(self.run_dir / rundir.METRICS_FILE)
            summary = {
                "stage": index + 1,
                "epochs": epoch - state.stage_start,
                "batch_size": plan.batch_size,
                **stage_report,
                "trainable_parameters": int(sum(np.prod(v.shape) for v in self.model.trainable_weights)),
                **skipped_updates(self._fitted().optimizer),
            }
            if summary.get("skipped_batches"):
                print(
                    f"kplug: stage {index + 1} skipped the update of {summary['skipped_batches']} batch(es) "
                    f"whose loss or gradients were not finite (train.on_nonfinite: skip_batch)."
                )
            state = TrainingState(
                index + 1, epoch, epoch, [*state.stages, summary], state.init, 0, state.step_offset
            )
            write_checkpoint(self.run_dir, self._fitted(), state, self.config.output.keep_checkpoints)
            previous = self._fitted().optimizer
            trained_before = {id(v) for v in self._fitted().trainable_variables}
            checkpoint = None
        return state

    def _cache_decision(self, plan: StagePlan) -> CacheDecision:
        """Whether stage ``plan`` (its trainable set applied) trains its heads on cached features."""
        if self.data.stream is not None:
            return CacheDecision(
                False, f"the {self.data.stream.source} is read as a stream, not held in memory"
            )
        splits = self.data.splits
        return stage_cache(
            model=self.model,
            run=self.run,
            training_model=self.training_model,
            precision=self.precision,
            distribution=self.distribution,
            spec=self.data.spec,
            rows=len(splits.train) + len(splits.validation),
            where=plan.where,
        )

    def _stage_inputs(
        self, plan: StagePlan, decision: CacheDecision, x: Any, validation: tuple[Any, Any] | None
    ) -> tuple[keras.Model, Any, tuple[Any, Any] | None]:
        """The model a stage fits, its training inputs and validation data: cached features or not."""
        if not decision.use:
            self._cached.clear()  # this stage may change the backbone
            return self._fitted(), x, validation
        inputs = {"train": x} if validation is None else {"train": x, "validation": validation[0]}
        cached = self._cached.features(self.model, self.data.spec, inputs, plan.batch_size)
        features = cached["train"]
        if validation is not None:
            validation = (cached["validation"], validation[1])
        heads = HeadsOnFeatures(self.model, list(self.heads), features.shape[1:], str(features.dtype))
        # the run model's optimizer (built on the same head variables) carries on in the stand-in
        compile_model(
            heads, self.heads, self.run, self.model.optimizer, soft=self.soft_targets, padded=self._padded()
        )
        return heads, features, validation

    def _placement(self) -> dict[str, Any]:
        """The distribution's ``describe``, with the splits whose last batch was padded to split evenly."""
        placement = self.distribution.describe(self.model)
        splits = self.data.splits
        sizes = [(plan.batch_size, name) for plan in self.stage_plans for name in ("train", "validation")]
        sizes.append((self.config.train.batch_size, "test" if len(splits.test) else "validation"))
        notes: dict[str, list[str]] = {}
        for batch_size, name in sizes:
            note = padding_note(
                len(getattr(splits, name)), batch_size, self.distribution.batch_multiple(name)
            )
            if note is not None and note not in notes.get(name, []):
                notes.setdefault(name, []).append(note)
        if notes:
            placement["padded_last_batch"] = {name: "; ".join(listed) for name, listed in notes.items()}
        return placement

    def _padded(self) -> bool:
        """Whether batches may carry zero-weight padding rows (the distribution splits them evenly)."""
        return any(self.distribution.batch_multiple(split) > 1 for split in ("train", "validation", "test"))

    def _evaluation_data(self, split: str, data: tuple[Any, Any] | None, batch_size: int) -> Any:
        """``(x, y)``, or its batches padded to split over the replicas (``kplug.data.padding``)."""
        if data is None:
            return None
        padded = evaluation_batches(*data, batch_size, self.distribution.batch_multiple(split))
        return data if padded is None else padded

    def _resumed_stage_report(self, index: int, state: TrainingState) -> dict[str, Any]:
        plan = self.stage_plans[index]
        return {
            "trainable": self.restored_trainable,
            "optimizer": plan.optimizer.name,
            "learning_rate": plan.learning_rate,
            "optimizer_state": f"restored from the checkpoint at epoch {state.epoch}, batch {state.batch}",
        }

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
        x, y = self.split_data(split)
        batch_size = self.config.train.batch_size
        if self.training_model is not None:  # only the training model was compiled
            compile_model(self.model, self.heads, self.run, soft=self.soft_targets, padded=self._padded())
        padded = evaluation_batches(x, y, batch_size, self.distribution.batch_multiple(split))
        if padded is not None:  # the last batch padded with zero-weight rows to split over the replicas
            values = self.model.evaluate(padded, verbose=0, return_dict=True)
        else:
            values = self.model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        return {"split": split, **{k: float(v) for k, v in values.items()}}


def fit(
    config: str | Path | dict[str, Any] | RunConfig | None = None,
    plugins: Plugins | list[Any] | None = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
    validation_data: Any = None,
    test_data: Any = None,
) -> FitResult:
    """Train a run from a config file path, a dict or a ``RunConfig``.

    ``validation_data`` and ``test_data`` (``(x, y)`` arrays, or the ``arrays`` source's
    options as a dict) give those splits explicitly, as ``data.validation`` / ``data.test`` do
    in a config.

    Example::

        result = kplug.fit({
            "data": {"source": "arrays", "options": {"x": x, "y": y}},
            "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
            "train": {"epochs": 3},
            "output": {"dir": "runs/demo"},
        })
        result.model, result.history, result.run_dir
    """
    if validation_data is not None or test_data is not None:
        if config is None:
            raise ConfigError(
                "validation_data / test_data: a resumed run reads its data from its own config."
            )
        config = with_held_out_arrays(load_config(config), validation=validation_data, test=test_data)
    return Trainer(config, plugins=plugins, output=output, resume=resume).fit()
