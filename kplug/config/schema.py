"""The typed description of a run (pydantic models), built in Python or read by ``kplug.config.load``.

Reading files and validating a dict live in ``kplug.config.load``; turning a
pydantic error into lines naming the field path (``train.stages[1].optimizer.learning_rate``),
the bad value and what is allowed lives in ``kplug.config.errors``. Component names
and their options are checked against the registry by ``kplug.plugin.resolve``
(they belong to the components).
"""

from __future__ import annotations

import operator
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt

from kplug.config.optimizers import check_optimizer_name, check_optimizer_options, takes_argument
from kplug.tune.space import TuneConfig


class Strict(BaseModel):
    """Base of every config section: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, arbitrary_types_allowed=True)


class ComponentConfig(Strict):
    """A registered component chosen by name, with its own options."""

    name: str = Field(description="Registered component name (see `kplug plugins`).")
    options: dict[str, Any] = Field(default_factory=dict, description="The component's options.")


class SplitConfig(Strict):
    """Deterministic (seeded) train / validation / test split, by fraction or by count."""

    validation: float = Field(
        0.0, ge=0.0, description="Held out for validation: a fraction below 1, or a number of examples."
    )
    test: float = Field(
        0.0, ge=0.0, description="Held out for testing: a fraction below 1, or a number of examples."
    )
    stratify: bool = Field(True, description="Keep class proportions in every split.")

    @pydantic.field_validator("validation", "test")
    @classmethod
    def _fraction_or_count(cls, value: float) -> float:
        if value >= 1 and value != int(value):
            raise ValueError("give a fraction below 1 or a whole number of examples")
        return value

    @pydantic.model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitConfig:
        if self.validation >= 1 or self.test >= 1:
            return self  # counts are checked against the data
        if self.validation + self.test >= 1.0:
            raise ValueError(
                f"validation ({self.validation}) + test ({self.test}) must be below 1 "
                f"so that some examples are left for training"
            )
        return self


class SourceConfig(Strict):
    """One of several data sources merged into one data set."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Kept per example in target 'source'."
    )
    source: str = Field(description="Registered dataset component.")
    options: dict[str, Any] = Field(default_factory=dict, description="The source's options.")


class HeldOutConfig(Strict):
    """The examples of one split given explicitly (``data.validation``, ``data.test``)."""

    source: str | None = Field(None, description="Registered dataset component; defaults to data.source.")
    options: dict[str, Any] = Field(default_factory=dict, description="The source's options.")


class DataConfig(Strict):
    """Where the examples come from and how they are selected and split."""

    source: str | None = Field(None, description="Registered dataset component, e.g. idx, csv, npz, arrays.")
    options: dict[str, Any] = Field(default_factory=dict, description="The source's options.")
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="Several sources merged into one data set (instead of source/options); each "
        "example keeps its source's name in the target 'source'.",
    )
    where: dict[str, list[Any]] = Field(
        default_factory=dict, description="Keep only rows whose target has one of these values."
    )
    limit: PositiveInt | None = Field(None, description="At most this many examples (seeded).")
    validation: HeldOutConfig | None = Field(
        None,
        description="Validation examples from their own source (e.g. a file of their own) instead of "
        "data.split.validation; data.where applies to them too.",
    )
    test: HeldOutConfig | None = Field(
        None, description="Test examples from their own source instead of data.split.test."
    )
    sample_weight: str | None = Field(
        None,
        description="The column (target) holding each example's training weight, e.g. a csv column read "
        "with options.targets: [weight]; validation and test metrics stay unweighted.",
    )
    split: SplitConfig = Field(default_factory=SplitConfig)

    @pydantic.model_validator(mode="after")
    def _one_source_or_several(self) -> DataConfig:
        if (self.source is None) == (not self.sources):
            raise ValueError("give either source (with options) or sources (a list to merge), not both")
        if self.sources and self.options:
            raise ValueError("options belong to each entry of sources when sources are merged")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        return self

    @pydantic.model_validator(mode="after")
    def _explicit_splits_replace_drawn_ones(self) -> DataConfig:
        for split in ("validation", "test"):
            held_out = getattr(self, split)
            if held_out is None:
                continue
            if getattr(self.split, split):
                raise ValueError(
                    f"data.{split} gives the {split} examples and data.split.{split} draws them from the "
                    f"data too; keep one"
                )
            if held_out.source is None and self.source is None:
                raise ValueError(f"data.{split}.source is needed when the data merges several sources")
        return self


class InitConfig(Strict):
    """Initialise weights from an earlier run, a model or weights file, or named arrays."""

    from_: str = Field(
        alias="from",
        description="Run directory, .keras model, .weights.h5 file, .npz archive or directory of .npy files.",
    )
    strict: bool = Field(
        False,
        description="Fail when a variable is skipped (shape mismatch) or a backbone variable stays new.",
    )
    map: dict[str, str] = Field(
        default_factory=dict,
        description="Regex assignment map, target variable path -> source path "
        "(e.g. {'backbone/(.*)': 'backbone/\\\\1'}). Empty: same paths.",
    )


class BackboneConfig(ComponentConfig):
    """The shared trunk."""

    init: InitConfig | None = None


class HeadConfig(ComponentConfig):
    """A task head on top of the backbone."""

    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="Output name (letters, digits, '_'); defaults to the component name.",
    )
    target: str = Field("label", description="Which target of the data this head learns.")
    loss_weight: PositiveFloat = 1.0
    metrics: list[str | ComponentConfig] | None = Field(
        None,
        description="What the head reports instead of its default metrics: registered metric names "
        "(accuracy, auc, precision, recall, f1_score, mae, r2_score, any keras.metrics class by its Keras "
        "name, or a plugin's) or {name, options}.",
    )

    @pydantic.field_validator("id")
    @classmethod
    def _not_a_keras_prefix(cls, value: str | None) -> str | None:
        # Keras names validation metrics "val_<name>": a head called "val" would collide
        if value is not None and (value == "val" or value.startswith("val_")):
            raise ValueError("a head id may not be 'val' or start with 'val_' (Keras' validation prefix)")
        return value

    @property
    def output_name(self) -> str:
        """The name of this head's output (its ``id`` or component name)."""
        return self.id or self.name.replace("-", "_")


class ModelConfig(Strict):
    """Backbone plus one or more heads, and the preprocessor turning raw features into model inputs."""

    backbone: BackboneConfig = Field(
        description="{name, options, init}; from Python also a keras.Model (or keras-hub Backbone) object."
    )
    preprocessor: ComponentConfig | None = Field(
        None,
        description="Raw features to model inputs (e.g. a tokenizer); unset: the backbone's default, if any.",
    )
    heads: list[HeadConfig] = Field(min_length=1)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _backbone_object(cls, data: Any) -> Any:
        if isinstance(data, dict) and "backbone" in data:
            return {**data, "backbone": _python_backbone(data["backbone"])}
        return data

    @pydantic.model_validator(mode="after")
    def _unique_head_names(self) -> ModelConfig:
        names = [head.output_name for head in self.heads]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"head ids must be unique; repeated: {', '.join(duplicates)} (set `id`)")
        return self


class OptimizerConfig(Strict):
    """Optimizer settings: any Keras optimizer by name, with its own options."""

    name: str = Field(
        "adam",
        description="A keras.optimizers class by lower-case name: adam, adamw, sgd, rmsprop, lion, "
        "adafactor, nadam, lamb, ... (an error lists them all).",
    )
    learning_rate: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat | None = None
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="For optimizers that take it (sgd, rmsprop).")
    clipnorm: PositiveFloat | None = None
    gradient_accumulation_steps: PositiveInt | None = None
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="The optimizer's own constructor arguments, e.g. {beta_1: 0.9, epsilon: 1.0e-6} for "
        "adam or {nesterov: true} for sgd; checked against its signature.",
    )

    @pydantic.field_validator("name")
    @classmethod
    def _a_keras_optimizer(cls, name: str) -> str:
        return check_optimizer_name(name)

    @pydantic.field_validator("options")
    @classmethod
    def _options_the_optimizer_takes(cls, options: dict[str, Any], info: pydantic.ValidationInfo) -> dict:
        name = info.data.get("name")  # absent when the name itself was invalid
        return options if name is None else check_optimizer_options(name, options)

    @pydantic.model_validator(mode="after")
    def _momentum_needs_an_optimizer_that_takes_it(self) -> OptimizerConfig:
        if self.momentum and not takes_argument(self.name, "momentum"):
            raise ValueError(f"momentum applies to sgd and rmsprop, not {self.name} (use its beta options)")
        return self


class ScheduleConfig(Strict):
    """Learning-rate schedule over one stage."""

    name: Literal["constant", "cosine", "linear"] = "constant"
    warmup_steps: int = Field(
        0,
        ge=0,
        description="Optimizer updates of linear warmup (an update spans gradient_accumulation_steps batches).",
    )
    final_fraction: float = Field(0.0, ge=0.0, le=1.0, description="End rate as a fraction of the start.")


class OptimizerOverride(Strict):
    """Optimizer settings a stage changes; unset fields keep ``train.optimizer``'s."""

    name: str | None = Field(
        None, description="Another Keras optimizer for this stage (drops the base options)."
    )
    learning_rate: PositiveFloat | None = Field(
        None, description="Defaults to train.optimizer.learning_rate."
    )
    weight_decay: NonNegativeFloat | None = None
    momentum: float | None = Field(None, ge=0.0, lt=1.0)
    clipnorm: PositiveFloat | None = None
    gradient_accumulation_steps: PositiveInt | None = None
    options: dict[str, Any] | None = Field(
        None, description="The optimizer's own options; defaults to train.optimizer.options (same optimizer)."
    )

    @pydantic.field_validator("name")
    @classmethod
    def _a_keras_optimizer(cls, name: str | None) -> str | None:
        return None if name is None else check_optimizer_name(name)


Pattern = Annotated[str, Field(min_length=1)]


class StageConfig(Strict):
    """One `Model.fit` call with its own trainable set, epochs, batch size, rates and optimizer."""

    epochs: PositiveInt
    batch_size: PositiveInt | None = Field(None, description="Defaults to train.batch_size.")
    learning_rate: PositiveFloat | None = Field(
        None,
        exclude=True,  # moved into optimizer.learning_rate when the config loads; never written back
        description="The former place of optimizer.learning_rate, still read: prefer optimizer.learning_rate.",
    )
    trainable: Literal["all"] | Annotated[list[Pattern], Field(min_length=1)] = Field(
        "all",
        description="'all', or patterns over layer paths: globs such as 'heads/*', or regexes "
        "written 're:backbone/block[34].*'.",
    )
    frozen: list[Pattern] = Field(
        default_factory=list, description="Patterns of layers frozen after `trainable` is applied."
    )
    train_last_blocks: int | None = Field(
        None,
        ge=0,
        description="Train only the backbone's last N blocks (its top-level layers with weights) "
        "and the heads; 0 trains the heads only.",
    )
    batchnorm: Literal["inference", "train"] = Field(
        "inference",
        description="Frozen BatchNormalization layers: 'inference' (Keras' fine-tuning convention: "
        "moving statistics, no updates) or 'train' (batch statistics, moving averages updated; "
        "gamma/beta stay frozen).",
    )
    optimizer: OptimizerOverride | None = Field(None, description="Optimizer settings changed in this stage.")
    schedule: ScheduleConfig | None = Field(None, description="Defaults to train.schedule.")
    learning_rates: dict[Pattern, PositiveFloat] | None = Field(
        None, description="Defaults to train.learning_rates."
    )
    layer_decay: float | None = Field(None, gt=0.0, le=1.0, description="Defaults to train.layer_decay.")
    optimizer_state: Literal["auto", "carry", "reset"] = Field(
        "auto",
        description="Keep the previous stage's optimizer state (moments, step count) for variables "
        "trained in both: 'auto' carries it when the optimizer settings are unchanged.",
    )

    @pydantic.model_validator(mode="after")
    def _one_way_to_choose_trainable(self) -> StageConfig:
        if self.train_last_blocks is not None and self.trainable != "all":
            raise ValueError("set either trainable patterns or train_last_blocks, not both")
        return self

    @pydantic.model_validator(mode="after")
    def _learning_rate_with_the_optimizer(self) -> StageConfig:
        """Move a stage's ``learning_rate`` (the older spelling) into ``optimizer.learning_rate``.

        The field is validated where the user wrote it, so its errors name
        ``train.stages[i].learning_rate``; afterwards only ``optimizer`` holds the rate.
        """
        if self.learning_rate is None:
            return self
        override = self.optimizer or OptimizerOverride()
        if override.learning_rate is not None and override.learning_rate != self.learning_rate:
            raise ValueError(
                f"learning_rate ({self.learning_rate}) and optimizer.learning_rate "
                f"({override.learning_rate}) disagree; set only optimizer.learning_rate"
            )
        self.optimizer = override.model_copy(update={"learning_rate": self.learning_rate})
        self.learning_rate = None
        return self


def merged_optimizer(base: OptimizerConfig, override: OptimizerOverride | None) -> OptimizerConfig:
    """``base`` with a stage's changes applied.

    A stage that switches to another optimizer drops the base's momentum (when the new one
    takes none) and the base's options (they belong to the base's optimizer).

    Raises:
        pydantic.ValidationError: the merged settings are not a valid optimizer.
    """
    if override is None:
        return base
    changes = override.model_dump(exclude_none=True)
    name = changes.get("name", base.name)
    if not takes_argument(name, "momentum") and "momentum" not in changes:
        changes["momentum"] = 0.0
    if name != base.name and "options" not in changes:
        changes["options"] = {}
    return OptimizerConfig.model_validate({**base.model_dump(), **changes})


class CompileConfig(Strict):
    """Explicit ``Model.compile`` speed settings (``train.compile``), as ``kplug bench --apply`` writes them."""

    jit_compile: Literal["auto"] | pydantic.StrictBool = Field(
        "auto",
        description="Keras' jit_compile: XLA on jax and tensorflow, torch.compile on torch; auto is "
        "Keras' default for the backend (jax XLA, tensorflow no XLA on CPU, torch eager).",
    )
    steps_per_execution: PositiveInt = Field(
        1, description="Training steps per compiled call (must be 1 on torch; Keras' default is 1)."
    )


def _compile_tag(value: Any) -> str:
    return "literal" if isinstance(value, str) else "dict"


# train.compile: 'auto' or explicit settings; the tag keeps errors to the branch the value meant
# (tags named as pydantic's own union tags, which error messages leave out of the field path)
CompileChoice = Annotated[
    Annotated[Literal["auto"], pydantic.Tag("literal")] | Annotated[CompileConfig, pydantic.Tag("dict")],
    pydantic.Discriminator(_compile_tag),
]


class TrainConfig(Strict):
    """How the model is trained."""

    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    class_weight: dict[str | int, NonNegativeFloat] | Literal["balanced"] | None = Field(
        None,
        description="Loss weight per class of the classification head ({label: weight}, labels as in the "
        "data, others weigh 1), or 'balanced' (n / (classes * count)); training loss only.",
    )
    epochs: PositiveInt | None = Field(
        None, description="Epochs of the single stage when `stages` is empty (default 1)."
    )
    batch_size: PositiveInt = 32
    stages: list[StageConfig] = Field(default_factory=list)
    learning_rates: dict[Pattern, PositiveFloat] = Field(
        default_factory=dict,
        description="Discriminative learning rates: layer-path pattern -> rate (first match wins), "
        "e.g. {'backbone/*': 1e-5, 'heads/*': 1e-3}; other layers use the stage's rate.",
    )
    layer_decay: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Layer-wise rate decay: the heads train at the stage's rate, the backbone's "
        "top block at rate * decay, the one below at rate * decay^2, ...",
    )
    verbose: Literal["auto", 0, 1, 2] = Field(
        "auto",
        description=(
            "Progress: auto or 1 shows Keras' progress bar on a terminal and one plain line per epoch "
            "otherwise; 2 plain lines always; 0 nothing. A line before each stage says what it trains."
        ),
    )
    compile: CompileChoice = Field(
        "auto",
        description="Model.compile speed settings: auto (the choice `kplug bench --apply` recorded "
        "for this config and backend, else Keras' defaults) or {jit_compile: auto|true|false, "
        "steps_per_execution: N}.",
    )
    cache_features: Literal["auto", True, False] = Field(
        "auto",
        description="Compute a frozen backbone's features once per split and train only the heads on "
        "them, in stages that train only the heads with nothing random before them (no augmentation, "
        "no dropout in the backbone): same results, much faster. auto: wherever that holds; true: "
        "the same, but a stage that trains only the heads and cannot cache is an error; false: never.",
    )
    on_nonfinite: Literal["stop", "skip_batch"] = Field(
        "stop",
        description="When the training loss becomes nan or infinite: 'stop' with an error naming the "
        "epoch, the batch and the last good checkpoint, or 'skip_batch' (that batch's update is not "
        "applied; the stage report counts them). Overflow handled by float16 loss scaling is neither.",
    )

    @pydantic.field_validator("compile", mode="before")
    @classmethod
    def _auto_or_settings(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto":
            raise ValueError(
                "must be 'auto' or a mapping {jit_compile: auto|true|false, steps_per_execution: N}"
            )
        return value

    @pydantic.model_validator(mode="after")
    def _epochs_or_stages(self) -> TrainConfig:
        if self.stages and self.epochs is not None:
            raise ValueError("train.epochs is used only when train.stages is empty; set epochs in each stage")
        for index, stage in enumerate(self.stages):
            try:
                merged_optimizer(self.optimizer, stage.optimizer)
            except pydantic.ValidationError as error:
                message = error.errors()[0]["msg"].replace("Value error, ", "")
                raise ValueError(f"stages[{index}].optimizer: {message}") from None
        return self

    def resolved_stages(self) -> list[StageConfig]:
        """The stages to run: the configured ones, or one stage from ``epochs``."""
        return self.stages or [StageConfig(epochs=self.epochs or 1)]


class PrecisionConfig(Strict):
    """Numeric precision policy (a registered precision component)."""

    policy: str = "float32"
    options: dict[str, Any] = Field(default_factory=dict)


class DistributionConfig(ComponentConfig):
    """Device placement (a registered distribution component)."""

    name: str = "auto"


class OutputConfig(Strict):
    """Where the run directory goes."""

    dir: str | None = Field(None, description="Run directory; defaults to runs/<name>.")
    overwrite: bool = Field(False, description="Replace an existing run directory.")
    checkpoint_every: int = Field(
        1, ge=0, description="Write a checkpoint every N epochs (0: only at stage ends)."
    )
    checkpoint_every_steps: int = Field(
        0, ge=0, description="Also write a checkpoint every N batches within an epoch (0: never)."
    )
    keep_checkpoints: PositiveInt = Field(2, description="How many of the newest checkpoints to keep.")
    save_best: str | None = Field(
        None,
        description="Also keep the best model as best.keras (with best.json): the epoch with the best "
        "value of this logged metric, e.g. val_loss or val_accuracy.",
    )
    save_best_mode: Literal["auto", "min", "max"] = Field(
        "auto",
        description="Whether save_best is minimised or maximised; auto: accuracy/AUC-like names are maximised.",
    )


# The components that carry objects given from Python (kplug.builtin registers them).
PYTHON_BACKBONE = "keras-model"
PYTHON_CALLBACK = "keras-callback"


def _keras_instance(value: Any, kind: str) -> bool:
    """Whether ``value`` is a ``keras.layers.Layer`` / ``keras.callbacks.Callback`` (without importing keras)."""
    keras = sys.modules.get("keras")  # an object of a keras class means keras is imported
    return keras is not None and isinstance(value, operator.attrgetter(kind)(keras))


def _python_backbone(value: Any) -> Any:
    """Let ``model.backbone`` be a Keras model object: ``{name: keras-model, options: {model: it}}``."""
    if _keras_instance(value, "layers.Layer"):
        return {"name": PYTHON_BACKBONE, "options": {"model": value}}
    return value


def _component_by_name(value: Any) -> Any:
    """Let a list entry be a bare component name (``tensorboard`` means ``{name: tensorboard}``) or,
    from Python, a ``keras.callbacks.Callback`` object (``{name: keras-callback, options: {callback: it}}``)."""
    if _keras_instance(value, "callbacks.Callback"):
        return {"name": PYTHON_CALLBACK, "options": {"callback": value}}
    return {"name": value} if isinstance(value, str) else value


# A component list entry: a bare name or {name, options}.
NamedComponent = Annotated[ComponentConfig, pydantic.BeforeValidator(_component_by_name)]


class RunConfig(Strict):
    """Everything that describes one training run."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: DataConfig
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    augment: list[ComponentConfig] = Field(default_factory=list)
    precision: PrecisionConfig = Field(default_factory=PrecisionConfig)
    distribution: DistributionConfig = Field(default_factory=DistributionConfig)
    callbacks: list[NamedComponent] = Field(
        default_factory=list,
        description="Training callbacks (e.g. early-stopping): a name or {name, options}.",
    )
    loggers: list[NamedComponent] = Field(
        default_factory=list,
        description="Experiment loggers (e.g. tensorboard, mlflow): a name or {name, options}.",
    )
    output: OutputConfig = Field(default_factory=OutputConfig)
    tune: TuneConfig | None = Field(None, description="Search space for `kplug tune` (ignored by train).")
    distill: dict[str, Any] | None = Field(
        None,
        description="Train as knowledge distillation from a teacher: validated and run by the plugin "
        "that implements kplug_training_model (kplug-compress).",
    )

    def run_dir(self) -> Path:
        """The run directory this config writes to."""
        return Path(self.output.dir or Path("runs") / self.name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON/YAML-safe dict of the whole config (arrays are summarised)."""
        return _plain(self.model_dump(mode="python", by_alias=True))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<array {value.dtype} {tuple(value.shape)}>"
    if isinstance(value, Path):
        return str(value)
    if _keras_instance(value, "layers.Layer") or _keras_instance(value, "callbacks.Callback"):
        return f"<{type(value).__name__} object from Python>"
    if hasattr(value, "columns") and hasattr(value, "shape"):  # a pandas DataFrame
        rows, columns = value.shape
        return f"<{type(value).__name__} {rows} rows x {columns} columns from Python>"
    if value is not None and not isinstance(value, (str, int, float, bool)):
        # a data stream or any other Python object: YAML records where it came from
        return f"<{type(value).__name__} object from Python>"
    return value
