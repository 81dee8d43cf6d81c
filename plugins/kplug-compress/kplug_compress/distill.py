"""Knowledge distillation as a kind of kplug run: a student learns a teacher's logits and features.

A distillation run is a normal run config for the student plus a ``distill`` section::

    distill:
      teacher: runs/digits-pretrain   # a kplug run directory or a .keras model file
      temperature: 4.0                # softmax temperature of the logits term
      alpha: 0.7                      # weight of the distillation terms; 1 - alpha weighs the labels
      logits: 1.0                     # weight of the logits term among the distillation terms (0: none)
      features:                       # feature terms: match an inner layer's output of the teacher
        - {teacher: backbone, student: backbone, weight: 1.0, loss: mse}
    name: digits-student
    data: {...}                       # the same examples and labels as the teacher's
    model: {backbone: {name: mlp, options: {units: 32}}, heads: [{name: classification, id: digits04}]}
    train: {epochs: 6}

``kplug train distill.yaml`` runs it through kplug's ``Trainer``: the plugin answers the
``kplug_training_model`` hook with a ``Distiller`` (a subclass of Keras'
``keras.distillation.Distiller``) that holds the frozen teacher and the student, so the run
has the usual run directory, ``metrics.csv`` (plus ``student_loss``, ``logits_loss``,
``feature_loss`` columns), atomic checkpoints and ``kplug train --resume RUN_DIR``. The loss is
``(1 - alpha) * label loss + alpha * (logits * T^2 * KL(softmax(t / T) || softmax(s / T))
+ sum_i weight_i * loss_i(teacher feature_i, projection_i(student feature_i)))``.
``kplug distill`` is the same run with a summary printed. ``report.json`` gets a
``distillation`` section: teacher and student metrics on the same split, parameters and sizes.

Feature paths name a layer by its path in the kplug model: ``backbone`` is the backbone's
output, ``backbone/embedding`` a layer inside it (nested models are followed). Keras'
``FeatureDistillation`` finds layers with ``model.get_layer(name).output``, which only works
for top-level layers of one graph; a kplug model's backbone is a nested model, so this module
builds the feature extractors itself (``tap_model``: the model's graph rebuilt with
``keras.models.clone_model``, sharing every layer, with the tapped tensors as extra outputs)
and hands them to Keras' ``Distiller``. When the student's feature width differs from the
teacher's, a learned ``Dense`` projection maps the student's features to the teacher's width;
it trains with the student, is checkpointed with it, and is not part of the saved student.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import keras
import numpy as np
import pydantic
from kplug import plugin
from kplug.plugin import CheckpointError, ConfigError, KplugError, Options, load_model_file
from pydantic import Field, NonNegativeFloat, PositiveFloat

if TYPE_CHECKING:
    from kplug import RunConfig
    from kplug.plugin import FitResult, RunContext

FINAL = "final_output"  # the key Keras' Distiller gives a model's own output among its features


class FeatureTerm(Options):
    """One feature term: match the teacher's features at one layer path with the student's at another."""

    teacher: str = Field("backbone", description="Teacher layer path (backbone: the backbone's output).")
    student: str = Field("backbone", description="Student layer path.")
    weight: NonNegativeFloat = Field(1.0, description="Weight of this term among the distillation terms.")
    loss: Literal["mse", "mae", "cosine_similarity"] = Field("mse", description="Feature loss.")


class DistillConfig(Options):
    """The ``distill`` section of a distillation run."""

    teacher: str = Field(description="Teacher: a kplug run directory or a .keras model file.")
    temperature: PositiveFloat = Field(3.0, description="Softmax temperature of the logits term.")
    alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the distillation terms; 1 - alpha weighs the label loss."
    )
    logits: NonNegativeFloat = Field(1.0, description="Weight of the logits term (0: features only).")
    features: list[FeatureTerm] = Field(default_factory=list, description="Feature terms.")

    @pydantic.model_validator(mode="after")
    def _some_term(self) -> DistillConfig:
        if self.logits == 0 and not any(term.weight > 0 for term in self.features):
            raise ValueError("logits is 0 and no feature term has a weight > 0: nothing to distil")
        return self


def distill_settings(config: RunConfig) -> DistillConfig | None:
    """The validated ``distill`` section of a run config, or ``None`` for a normal run."""
    section = config.distill
    if section is None:
        return None
    try:
        return DistillConfig.model_validate(section)
    except pydantic.ValidationError as error:
        raise ConfigError(_section_errors(error, section)) from None


def _section_errors(error: pydantic.ValidationError, section: Any) -> str:
    """``distill.<field> = value: problem`` lines, formatted as kplug's own config errors."""
    lines = plugin.validation_problems(error, section, where="distill", schema=DistillConfig)
    return "Invalid distill section:\n  " + ".\n  ".join(lines) + "."


def teacher_file(teacher: str) -> Path:
    """The teacher's ``.keras`` file: the model of a run directory, or the file itself."""
    path = Path(teacher)
    if path.is_dir():
        if not (path / plugin.MODEL_FILE).is_file():
            raise CheckpointError(f"distill.teacher = {teacher!r}: {plugin.MODEL_FILE} is missing.")
        return path / plugin.MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"distill.teacher = {teacher!r}: no such run directory or .keras file.")
    return path


def check_teacher_labels(teacher: str, label_maps: dict[str, Any], target: str) -> None:
    """A teacher run directory must map labels as the student's data does."""
    labels = Path(teacher) / plugin.LABELS_FILE
    if not labels.is_file():
        return
    saved = json.loads(labels.read_text()).get(target)
    ours = label_maps[target].to_dict()
    if saved is not None and saved != ours:
        raise ConfigError(
            f"distill.teacher = {teacher!r} maps labels {saved} but this run's data gives {ours}: "
            f"teacher and student must share the examples' label mapping (check data.where)."
        )


# -- feature extractors on nested models -----------------------------------------------------


def _layer(model: keras.Model, name: str, path: str, where: str) -> keras.layers.Layer:
    try:
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        raise ConfigError(
            f"{where} = {path!r}: {model.name} has no layer {name!r}; its layers are {', '.join(names)}."
        ) from None


def tap_model(model: keras.Model, taps: dict[str, str], where: str = "distill.features") -> keras.Model:
    """A model sharing ``model``'s layers whose output is ``{"final_output": model's output, key: features}``.

    Args:
        model: a functional (or Sequential) Keras model, e.g. a kplug model.
        taps: ``{key: layer path}``; ``backbone`` is the output of the top-level layer
            ``backbone``, ``backbone/embedding`` the output of the layer ``embedding`` inside it.
        where: the config field the paths come from (for errors).

    Raises:
        ConfigError: a path names no layer, or goes through a layer that is not a model.
    """
    direct: dict[str, str] = {}
    nested: dict[str, dict[str, str]] = {}
    for key, path in taps.items():
        name, _, rest = path.strip("/").partition("/")
        layer = _layer(model, name, path, where)
        if not rest:
            direct[key] = name
        elif not isinstance(layer, keras.Model):
            raise ConfigError(
                f"{where} = {path!r}: {name!r} is a {type(layer).__name__}, not a model with inner layers."
            )
        else:
            nested.setdefault(name, {})[key] = rest
    if isinstance(model, keras.Sequential) or not nested:
        if nested:
            raise ConfigError(f"{where}: cannot follow a path into a layer of Sequential model {model.name}.")
        # plain layers of one graph: their symbolic outputs are connected to the model's inputs
        outputs = {key: model.get_layer(name).output for key, name in direct.items()}
        if not any(isinstance(model.get_layer(name), keras.Model) for name in direct.values()):
            return keras.Model(model.input, {FINAL: model.output, **outputs}, name=f"{model.name}_features")
    inner = {name: tap_model(model.get_layer(name), sub, where) for name, sub in nested.items()}
    captured: dict[str, Any] = {}

    def call(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
        # rebuild the model's graph layer by layer: a nested model we tap into runs as its
        # tapped twin (same layers, extra outputs), so no layer runs twice
        if layer.name in inner:
            outputs = dict(inner[layer.name](*args, **kwargs))
            result = outputs.pop(FINAL)
            captured.update(outputs)
        else:
            result = layer(*args, **kwargs)
        for key, name in direct.items():
            if name == layer.name:
                captured[key] = result
        return result

    rebuilt = keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
    return keras.Model(rebuilt.input, {FINAL: rebuilt.output, **captured}, name=f"{model.name}_features")


# -- the distiller ----------------------------------------------------------------------------


class _Tracked:
    """Mixin: a distillation term that records its value in a ``keras.metrics.Mean`` (a logged metric)."""

    tracker: keras.metrics.Mean

    def compute_loss(self, teacher_outputs: Any, student_outputs: Any, **kwargs: Any) -> Any:
        # features can come in float16/bfloat16 under mixed precision: compare in float32
        teacher_outputs = keras.tree.map_structure(lambda t: keras.ops.cast(t, "float32"), teacher_outputs)
        student_outputs = keras.tree.map_structure(lambda t: keras.ops.cast(t, "float32"), student_outputs)
        value = super().compute_loss(teacher_outputs, student_outputs, **kwargs)
        self.tracker.update_state(value)
        return value


class _LogitsTerm(_Tracked, keras.distillation.LogitsDistillation):
    pass


class _FeatureTerm(_Tracked, keras.distillation.FeatureDistillation):
    pass


class Distiller(keras.distillation.Distiller):
    """Keras' ``Distiller`` with feature paths into nested models and learned projections.

    Keras' own ``Distiller`` looks feature layers up with ``get_layer`` on the top-level
    model and runs the student twice when features are distilled (once for the
    predictions, once for the features). This subclass builds both extractors with
    ``tap_model`` and runs the student once per step: ``call`` runs its extractor and
    keeps the features for ``compute_loss``.

    Args:
        teacher: the trained teacher (frozen).
        student: the student being trained (the run's model).
        settings: the ``distill`` section.
    """

    def __init__(self, teacher: keras.Model, student: keras.Model, settings: DistillConfig) -> None:
        terms: list[keras.distillation.DistillationLoss] = []
        weights: list[float] = []
        trackers: list[keras.metrics.Mean] = []
        if settings.logits > 0:
            # an instance, not Keras 3.15's default "kl_divergence" string: the string becomes a plain
            # function, LogitsDistillation's isinstance(KLDivergence) check misses it, and the KL is
            # then taken between raw logits (it even turns negative during training)
            term = _LogitsTerm(temperature=settings.temperature, loss=keras.losses.KLDivergence())
            term.tracker = keras.metrics.Mean(name="logits_loss")
            terms.append(term)
            weights.append(settings.logits)
            trackers.append(term.tracker)
        for index, feature in enumerate(settings.features):
            suffix = "" if len(settings.features) == 1 else f"_{index}"
            term = _FeatureTerm(
                loss=feature.loss,
                teacher_layer_name=f"teacher_{index}",
                student_layer_name=f"student_{index}",
            )
            term.tracker = keras.metrics.Mean(name=f"feature_loss{suffix}")
            terms.append(term)
            weights.append(feature.weight)
            trackers.append(term.tracker)
        super().__init__(
            teacher,
            student,
            terms,
            distillation_loss_weights=weights,
            student_loss_weight=1.0 - settings.alpha,
            name="distiller",
        )
        self.term_trackers = trackers
        self._build_extractors(settings.features)
        # every variable exists now (teacher, student, projections): a checkpoint can be loaded
        # into a fresh distiller before it has run a step (kplug train --resume)
        self.built = True

    # Keras' Distiller validates and builds extractors with get_layer on top-level layers only
    def _validate_distillation_loss_compatibility(self, teacher: Any, student: Any, loss: Any) -> None:
        pass

    def _create_multi_feature_extractors(self) -> None:
        pass  # Keras' version calls get_layer on top-level layers; see _build_extractors

    def _build_extractors(self, features: list[FeatureTerm]) -> None:
        self._teacher_feature_extractor = self._student_feature_extractor = None
        self.projections: list[keras.layers.Layer | None] = []
        if not features:
            return
        self._teacher_feature_extractor = tap_model(
            self.teacher,
            {f"teacher_{i}": term.teacher for i, term in enumerate(features)},
            "distill.features",
        )
        student_taps = tap_model(
            self.student,
            {f"student_{i}": term.student for i, term in enumerate(features)},
            "distill.features",
        )
        teacher_shapes = self._teacher_feature_extractor.output
        outputs = dict(student_taps.output)
        for index, term in enumerate(features):
            wanted = teacher_shapes[f"teacher_{index}"].shape
            have = outputs[f"student_{index}"].shape
            where = f"distill.features[{index}]"
            if len(wanted) != len(have) or tuple(wanted[1:-1]) != tuple(have[1:-1]):
                raise ConfigError(
                    f"{where}: teacher {term.teacher!r} gives features of shape {tuple(wanted)[1:]} and "
                    f"student {term.student!r} {tuple(have)[1:]}; they must match except in the last axis "
                    f"(which a learned projection maps). Choose layers with matching shapes (e.g. both "
                    f"backbones' outputs)."
                )
            projection = None
            if wanted[-1] != have[-1]:
                projection = keras.layers.Dense(
                    wanted[-1], name=f"distill_projection_{index}", dtype="float32"
                )
                outputs[f"student_{index}"] = projection(outputs[f"student_{index}"])
            self.projections.append(projection)
        self._student_feature_extractor = keras.Model(student_taps.input, outputs, name="student_features")

    def call(self, inputs: Any, training: bool | None = None, **kwargs: Any) -> Any:
        """The student's predictions; with feature terms, its features are kept for ``compute_loss``."""
        if self._student_feature_extractor is None:
            return self.student(inputs, training=training, **kwargs)
        outputs = self._student_feature_extractor(inputs, training=training)
        self.__dict__["_student_outputs"] = outputs  # not tracked: a step's tensors, not state
        return outputs[FINAL]

    def _extract_all_student_features(self, x: Any, y_pred: Any) -> dict[str, Any]:
        outputs = self.__dict__.get("_student_outputs")
        if self._student_feature_extractor is None:
            return {FINAL: y_pred}
        if outputs is None or outputs[FINAL] is not y_pred:  # not from this step's forward pass
            outputs = self._student_feature_extractor(x, training=True)
        return outputs

    def reset_metrics(self) -> None:
        super().reset_metrics()
        for tracker in self.term_trackers:
            tracker.reset_state()


# -- kplug hooks --------------------------------------------------------------------------------


def configure(config: RunConfig) -> None:
    """Check the ``distill`` section and that the teacher exists before anything is built."""
    settings = distill_settings(config)
    if settings is None:
        return
    if len(config.model.heads) != 1:
        raise ConfigError(
            f"model.heads: distillation trains one head; this config has {len(config.model.heads)}."
        )
    teacher_file(settings.teacher)


def training_model(run: RunContext, model: keras.Model) -> keras.Model | None:
    """The ``Distiller`` that trains ``model`` on the teacher (``None`` for a normal run)."""
    settings = distill_settings(run.config)
    if settings is None:
        return None
    check_teacher_labels(settings.teacher, run.label_maps, run.config.model.heads[0].target)
    teacher = load_model_file(teacher_file(settings.teacher))
    try:
        return Distiller(teacher, model, settings)
    except KplugError:
        raise
    except ValueError as error:  # Keras' checks: input/output shapes and dtypes of the two models
        raise ConfigError(f"distill.teacher = {settings.teacher!r}: {error}") from None


def _keras_bytes(model: keras.Model) -> int:
    """The size of ``model`` saved as ``.keras`` without optimizer variables."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.variables:
        model = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, not compiled
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / plugin.MODEL_FILE
        model.save(path)
        return path.stat().st_size


def _weight_bytes(model: keras.Model) -> int:
    return int(sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in model.weights))


def on_fit_end(run: RunContext, result: FitResult) -> None:
    """Add the ``distillation`` section (teacher and student metrics, parameters, sizes) to report.json."""
    settings = distill_settings(run.config)
    distiller = run.training_model
    if settings is None or not isinstance(distiller, Distiller):
        return
    teacher = distiller.teacher
    teacher_metrics: dict[str, Any] = {}
    split = result.metrics.get("split")
    if split is not None:
        run.compile(teacher)
        x, y = run.split_data(split)
        values = teacher.evaluate(x, y, batch_size=run.config.train.batch_size, verbose=0, return_dict=True)
        teacher_metrics = {"split": split, **{k: float(v) for k, v in values.items()}}
    last = {k: v[-1] for k, v in result.history.items() if k.startswith(("logits_loss", "feature_loss"))}
    result.report["distillation"] = {
        **settings.model_dump(),
        "projections": [
            None if layer is None else int(layer.units) for layer in getattr(distiller, "projections", [])
        ],
        "final_terms": last,
        "teacher_metrics": teacher_metrics,
        "student_metrics": result.metrics,
        "teacher_parameters": int(teacher.count_params()),
        "student_parameters": int(result.model.count_params()),
        # both saved the same way (no optimizer state: a run's own model.keras may hold one)
        "teacher_bytes": _keras_bytes(teacher),
        "student_bytes": _keras_bytes(result.model),
        "teacher_weight_bytes": _weight_bytes(teacher),
        "student_weight_bytes": _weight_bytes(result.model),
    }
    plugin.write_json(result.run_dir / plugin.REPORT_FILE, result.report)


# -- convenience --------------------------------------------------------------------------------


def distill(
    source: str | Path | dict[str, Any] | None = None,
    plugins: Any = None,
    output: str | Path | None = None,
    resume: str | Path | None = None,
) -> FitResult:
    """Train a distillation run: ``kplug.fit`` of a config with a ``distill`` section.

    Args:
        source: a config file or dict: a student run config plus a ``distill`` section
            (``None`` with ``resume``: the run directory's own config).
        plugins: extra plugin objects, or a ``Plugins`` (it must include this plugin).
        output: overrides ``output.dir``.
        resume: a distillation run directory to continue from its newest checkpoint.

    Returns:
        The ``FitResult``; ``result.report["distillation"]`` compares teacher and student.

    Raises:
        ConfigError: no or a bad ``distill`` section, several heads, or a teacher whose labels differ.
        CheckpointError: the teacher cannot be found or loaded.
    """
    from kplug import Trainer, load_config

    if source is not None and load_config(source).distill is None:
        raise ConfigError(
            "a distillation run needs a `distill:` section: {teacher: RUN_DIR or model.keras, "
            "temperature: 3.0, alpha: 0.5, features: [{teacher: backbone, student: backbone}]}."
        )
    return Trainer(source, plugins=plugins, output=output, resume=resume).fit()


def _cli_distill(args: argparse.Namespace) -> int:
    result = distill(args.config, output=args.output, resume=args.resume)
    facts = result.report["distillation"]
    for who in ("teacher", "student"):
        metrics = {k: v for k, v in facts[f"{who}_metrics"].items() if k != "split"}
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        print(
            f"{who:8s} {facts[f'{who}_parameters']:9d} parameters {facts[f'{who}_bytes']:9d} bytes  {shown}"
        )
    print(f"Run directory: {result.run_dir}")
    return 0


def add_distill_command(commands: argparse._SubParsersAction) -> None:
    """Add ``kplug distill CONFIG [--output DIR] [--resume RUN_DIR]``."""
    command = commands.add_parser(
        "distill", help="train a student on a teacher (same as kplug train with a distill: section)"
    )
    command.add_argument("config", nargs="?", help="student run config with a `distill:` section")
    command.add_argument("--output", help="run directory (overrides output.dir)")
    command.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted distillation run")
    command.set_defaults(handler=_cli_distill)
