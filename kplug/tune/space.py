"""The ``tune`` section of a run config: which fields ``kplug tune`` varies, and how.

This module only describes and applies a search space; it imports no optimiser, so
configs with a ``tune`` section validate without Optuna installed. ``kplug.tune.search``
runs the search.

Example::

    tune:
      metric: val_accuracy
      direction: maximize
      space:
        train.optimizer.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
        train.batch_size: {type: categorical, choices: [16, 32, 64]}
        train.stages[0].epochs: {type: int, low: 1, high: 4}
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt

from kplug.errors import ConfigError, did_you_mean

# a dotted config path whose parts may carry list indices: train.stages[1].optimizer.learning_rate
PATH_PATTERN = re.compile(r"^[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*$")
_PART = re.compile(r"([A-Za-z_][\w-]*)|\[(\d+)\]")
# fields that moved, by their older path: the config loads the old spelling, and so does a search
_MOVED = (
    (re.compile(r"^train\.stages(\[\d+\])\.learning_rate$"), r"train.stages\1.optimizer.learning_rate"),
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FloatRange(_Section):
    """A float between ``low`` and ``high`` (log-uniform with ``log: true``)."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="Sample log-uniformly (learning rates, weight decay).")
    step: PositiveFloat | None = Field(None, description="Discretisation step (not with log).")

    @pydantic.model_validator(mode="after")
    def _valid_range(self) -> FloatRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("step and log cannot be combined")
        return self


class IntRange(_Section):
    """An integer from ``low`` to ``high`` inclusive."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: PositiveInt = 1

    @pydantic.model_validator(mode="after")
    def _valid_range(self) -> IntRange:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("a log range needs low > 0 and step 1")
        return self


class Choice(_Section):
    """One of ``choices`` (numbers, strings, booleans, lists or mappings)."""

    type: Literal["categorical"]
    choices: list[Any] = Field(min_length=1)


Parameter = Annotated[FloatRange | IntRange | Choice, Field(discriminator="type")]


class PrunerConfig(_Section):
    """Stop unpromising trials early, judged on the epoch values of ``tune.metric``."""

    name: Literal["median", "successive-halving", "none"] = Field(
        "median", description="median: stop a trial worse than the median of earlier trials at that epoch."
    )
    startup_trials: NonNegativeInt = Field(2, description="Trials that always run to the end first.")
    warmup_epochs: NonNegativeInt = Field(1, description="Epochs of every trial that are never pruned.")


class TuneConfig(_Section):
    """A hyperparameter search around the run: the fields to vary and the metric to optimise."""

    metric: str = Field("val_loss", description="An epoch metric of metrics.csv, e.g. val_accuracy.")
    direction: Literal["minimize", "maximize"] = "minimize"
    sampler: Literal["tpe", "random"] = Field("tpe", description="Optuna sampler (seeded by `seed`).")
    pruner: PrunerConfig = Field(default_factory=PrunerConfig)
    space: dict[str, Parameter] = Field(
        min_length=1,
        description="Config path (train.optimizer.learning_rate, train.stages[0].epochs, "
        "model.backbone.options.units, ...) -> its range or choices.",
    )

    @pydantic.field_validator("space")
    @classmethod
    def _paths_are_config_paths(cls, space: dict[str, Any]) -> dict[str, Any]:
        for path in space:
            if not PATH_PATTERN.match(path):
                raise ValueError(
                    f"{path!r} is not a config path; write fields joined by '.', list items as [i] "
                    f"(e.g. train.stages[0].optimizer.learning_rate)"
                )
            if path.split(".")[0].split("[")[0] in ("tune", "output", "name"):
                raise ValueError(f"{path!r}: the tune, output and name fields cannot be searched")
        return space


def path_parts(path: str) -> list[str | int]:
    """``"train.stages[1].epochs"`` -> ``["train", "stages", 1, "epochs"]``."""
    return [int(index) if index else name for name, index in _PART.findall(path)]


def with_value(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the config dict ``data`` with ``path`` set to ``value``.

    Only the containers along the path are copied (arrays in ``data.options`` are shared).
    Every container on the path must exist; the last field may be new only inside a mapping
    of options.

    Raises:
        ConfigError: naming the path and the part that does not exist.
    """
    parts = path_parts(path)
    root = dict(data)
    node: Any = root
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = f"tune.space[{path!r}]"
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                size = len(node) if isinstance(node, list) else "no"
                raise ConfigError(f"{where}: index [{part}] does not exist (the list has {size} entries).")
        elif not isinstance(node, dict):
            raise ConfigError(
                f"{where}: the value before '{part}' is a {type(node).__name__}, not a section."
            )
        elif part not in node and not (last or parts[depth - 1] == "options"):
            hint = did_you_mean(part, [str(k) for k in node])
            raise ConfigError(
                f"{where}: the config has no field '{part}' there.{hint} "
                f"Fields there: {', '.join(map(str, node)) or 'none'}."
            )
        if last:
            node[part] = value
            break
        child = node[part] if isinstance(part, int) else node.get(part)
        if isinstance(child, (list, dict)) or child is None:
            child = list(child) if isinstance(child, list) else dict(child or {})
            node[part] = child
        node = child
    return root


def current_path(path: str) -> str:
    """Where ``path`` is now: ``train.stages[1].learning_rate`` -> ``train.stages[1].optimizer.learning_rate``."""
    for old, new in _MOVED:
        path = old.sub(new, path)
    return path


def apply_params(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of the config dict ``data`` with every ``path: value`` of ``params`` set.

    A path written the older way (``train.stages[i].learning_rate``) sets the field where it is now.
    """
    for path, value in params.items():
        data = with_value(data, current_path(path), value)
    return data
