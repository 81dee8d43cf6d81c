"""Knowledge distillation: train a student from the registry on a trained teacher's logits.

A distillation run is a normal run config for the student plus a ``distill`` section::

    distill:
      teacher: runs/digits-pretrain   # a kplug run directory or a .keras model file
      temperature: 4.0
      alpha: 0.7                      # weight of the distillation loss (1 - alpha: the label loss)
    name: digits-student
    data: {...}                       # the same examples and labels as the teacher's
    model: {backbone: {name: mlp, options: {units: 32}}, heads: [{name: classification, id: digits04}]}
    train: {epochs: 6}

``kplug distill distill.yaml`` (or ``kplug_compress.distill.distill(path)``) trains every
stage through Keras' ``keras.distillation.Distiller`` with ``LogitsDistillation``: the
loss is ``(1 - alpha) * label loss + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))``.
The run directory is a normal kplug run of the student (``kplug evaluate``, ``predict``
and ``export`` work on it); ``report.json`` gets a ``distillation`` section with the
teacher's and the student's metrics on the same split, parameter counts and file sizes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pydantic
from kplug import rundir
from kplug.assembly import build_model, compile_model
from kplug.config import RunConfig, Strict, dump_config, format_validation_error, read_config_file
from kplug.errors import CheckpointError, ConfigError
from kplug.inputs import PreparedData, head_targets, prepare_data
from kplug.optimizers import build_optimizer, learning_rate_schedule
from kplug.plugins import Plugins, kplug_version
from kplug.trainer import Trainer, dtype_policy
from kplug.transfer import init_from_checkpoint, load_model_file, set_trainable
from pydantic import Field, PositiveFloat

SECTION = "distill"


class DistillConfig(Strict):
    """The ``distill`` section of a distillation run."""

    teacher: str = Field(description="Teacher: a kplug run directory or a .keras model file.")
    temperature: PositiveFloat = Field(3.0, description="Softmax temperature of the logits distillation.")
    alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the distillation loss; 1 - alpha weighs the label loss."
    )


@dataclass
class DistillResult:
    """What ``distill`` returns: the trained student and its run directory.

    Attributes:
        model: the student ``keras.Model``.
        run_dir: the student's run directory.
        metrics: the student's metrics on the test (else validation) split.
        teacher_metrics: the teacher's metrics on the same split.
        report: the contents of ``report.json``.
    """

    model: keras.Model
    run_dir: Path
    metrics: dict[str, Any]
    teacher_metrics: dict[str, Any]
    report: dict[str, Any]


def split_config(source: str | Path | dict[str, Any]) -> tuple[DistillConfig, dict[str, Any]]:
    """Separate the ``distill`` section from the student's run config."""
    data = dict(source) if isinstance(source, dict) else read_config_file(source)
    section = data.pop(SECTION, None)
    if section is None:
        raise ConfigError(
            "a distillation run needs a `distill:` section: {teacher: RUN_DIR or model.keras, "
            "temperature: 3.0, alpha: 0.5}."
        )
    try:
        return DistillConfig.model_validate(section), data
    except pydantic.ValidationError as error:
        message = format_validation_error(error, section).replace("\n", "\n  ")
        raise ConfigError(f"distill: {message}") from None


def load_teacher(teacher: str, data: PreparedData, target: str) -> keras.Model:
    """Load the teacher; a run directory's label mapping must equal the student's."""
    path = Path(teacher)
    if path.is_dir():
        labels = path / rundir.LABELS_FILE
        if not (path / rundir.MODEL_FILE).is_file():
            raise CheckpointError(f"distill.teacher = {teacher!r}: {rundir.MODEL_FILE} is missing.")
        if labels.is_file():
            saved = json.loads(labels.read_text()).get(target)
            ours = data.label_maps[target].to_dict()
            if saved is not None and saved != ours:
                raise ConfigError(
                    f"distill.teacher = {teacher!r} maps labels {saved} but this run's data gives {ours}: "
                    f"teacher and student must share the examples' label mapping (check data.where)."
                )
        path = path / rundir.MODEL_FILE
    elif not path.is_file():
        raise CheckpointError(f"distill.teacher = {teacher!r}: no such run directory or .keras file.")
    return load_model_file(path)


def _split(data: PreparedData) -> str | None:
    if len(data.splits.test):
        return "test"
    return "validation" if len(data.splits.validation) else None


def _evaluate(model: keras.Model, trainer: Trainer, split: str | None) -> dict[str, Any]:
    if split is None:
        return {}
    examples = getattr(trainer.data.splits, split)
    compile_model(model, trainer.heads, trainer.run)
    y = head_targets(trainer.run, examples, trainer.data.label_maps)
    values = model.evaluate(
        examples.features, y, batch_size=trainer.config.train.batch_size, verbose=0, return_dict=True
    )
    return {"split": split, **{k: float(v) for k, v in values.items()}}


def _file_size(model: keras.Model, path: Path) -> int:
    rundir.save_model(model, path)
    return path.stat().st_size


def _fit_stages(trainer: Trainer, teacher: keras.Model, settings: DistillConfig) -> list[dict[str, Any]]:
    from keras.distillation import Distiller, LogitsDistillation

    config, student = trainer.config, trainer.model
    (head,) = trainer.heads.values()
    splits, maps = trainer.data.splits, trainer.data.label_maps
    x, y = splits.train.features, head_targets(trainer.run, splits.train, maps)
    validation = (
        (splits.validation.features, head_targets(trainer.run, splits.validation, maps))
        if len(splits.validation)
        else None
    )
    summaries = []
    for index, stage in enumerate(config.train.resolved_stages()):
        batch_size = stage.batch_size or config.train.batch_size
        trainable = set_trainable(student, stage.trainable)
        distiller = Distiller(
            teacher,
            student,
            # An instance, not Keras 3.15's default "kl_divergence" string: the string becomes a
            # plain function, LogitsDistillation's isinstance(KLDivergence) check misses it, and the
            # KL is then taken between raw logits (it even turns negative during training).
            LogitsDistillation(temperature=settings.temperature, loss=keras.losses.KLDivergence()),
            student_loss_weight=1.0 - settings.alpha,
        )
        rate = learning_rate_schedule(
            config.train.schedule,
            stage.learning_rate or config.train.optimizer.learning_rate,
            math.ceil(len(x) / batch_size) * stage.epochs,
        )
        distiller.compile(
            optimizer=build_optimizer(config.train.optimizer, rate),
            loss=head.loss(config.train.label_smoothing),
            metrics=head.metrics(),
        )
        history = distiller.fit(
            x,
            y,
            batch_size=batch_size,
            epochs=stage.epochs,
            validation_data=validation,
            verbose=config.train.verbose,
        )
        summaries.append(
            {
                "stage": index + 1,
                "epochs": stage.epochs,
                "trainable": trainable,
                "final": {k: float(v[-1]) for k, v in history.history.items()},
            }
        )
    return summaries


def distill(
    source: str | Path | dict[str, Any],
    plugins: Plugins | list[Any] | None = None,
    output: str | Path | None = None,
) -> DistillResult:
    """Train the student of a distillation config on its teacher's logits and write its run directory.

    Args:
        source: a config file or dict: a student run config plus a ``distill`` section.
        plugins: extra plugin objects, or a ``Plugins``.
        output: overrides ``output.dir``.

    Returns:
        A ``DistillResult`` with the student, its metrics and the teacher's.

    Raises:
        ConfigError: a bad ``distill`` section, several heads, or a teacher whose labels differ.
        CheckpointError: the teacher cannot be loaded.
    """
    settings, student_config = split_config(source)
    started = time.perf_counter()
    trainer = Trainer(student_config, plugins=plugins, output=output)
    config: RunConfig = trainer.config
    if len(config.model.heads) != 1:
        raise ConfigError(
            f"model.heads: distillation trains one head; this config has {len(config.model.heads)}."
        )
    keras.utils.set_random_seed(config.seed)
    trainer.data = prepare_data(trainer.run)
    teacher = load_teacher(settings.teacher, trainer.data, config.model.heads[0].target)
    distribution = trainer.run.distribution.build()
    with dtype_policy(trainer.run.precision.build()), distribution.scope():
        trainer.model, trainer.heads = build_model(
            trainer.run, trainer.data.input_shape, trainer.data.input_dtype, trainer.data.label_maps
        )
        if config.model.backbone.init is not None:
            init_from_checkpoint(
                trainer.model, config.model.backbone.init.from_, config.model.backbone.init.map
            )
        run_dir = trainer.run_dir
        rundir.prepare_run_dir(run_dir, config.output.overwrite)
        dump_config(config, run_dir / rundir.CONFIG_FILE)
        rundir.write_json(
            run_dir / rundir.LABELS_FILE, {t: m.to_dict() for t, m in trainer.data.label_maps.items()}
        )
        stages = _fit_stages(trainer, teacher, settings)
        split = _split(trainer.data)
        student_metrics = _evaluate(trainer.model, trainer, split)
        teacher_metrics = _evaluate(teacher, trainer, split)
    student_bytes = _file_size(trainer.model, run_dir / rundir.MODEL_FILE)
    teacher_bytes = _file_size(teacher, run_dir / "teacher.keras")
    (run_dir / "teacher.keras").unlink()
    report = {
        "name": config.name,
        "backend": keras.backend.backend(),
        "versions": {
            "kplug": kplug_version(),
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
        "seed": config.seed,
        "parameters": int(trainer.model.count_params()),
        "stages": stages,
        "metrics": student_metrics,
        "distillation": {
            **settings.model_dump(),
            "teacher_metrics": teacher_metrics,
            "student_metrics": student_metrics,
            "teacher_parameters": int(teacher.count_params()),
            "student_parameters": int(trainer.model.count_params()),
            "teacher_bytes": teacher_bytes,
            "student_bytes": student_bytes,
        },
        "timings": {"total_seconds": time.perf_counter() - started},
    }
    rundir.write_json(run_dir / rundir.REPORT_FILE, report)
    return DistillResult(trainer.model, run_dir, student_metrics, teacher_metrics, report)


def _cli_distill(args: argparse.Namespace) -> int:
    result = distill(args.config, output=args.output)
    facts = result.report["distillation"]
    for who in ("teacher", "student"):
        metrics = {k: v for k, v in facts[f"{who}_metrics"].items() if k != "split"}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(f"{who:8s} {facts[f'{who}_parameters']:9d} parameters  {shown}")
    print(f"Run directory: {result.run_dir}")
    return 0


def add_distill_command(commands: argparse._SubParsersAction) -> None:
    """Add ``kplug distill CONFIG [--output DIR]``."""
    command = commands.add_parser("distill", help="train a student on a teacher's logits")
    command.add_argument("config", help="student run config with a `distill:` section")
    command.add_argument("--output", help="run directory (overrides output.dir)")
    command.set_defaults(handler=_cli_distill)
