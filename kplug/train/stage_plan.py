"""What each training stage runs with, resolved once from ``train`` and its stages.

A stage's settings fall back to the ``train`` defaults (batch size, optimizer, schedule,
per-layer rates). ``plan_stages`` resolves every fallback once, before training starts;
the trainer compiles, batches, carries optimizer state and reports from the plans, and
plugins read the same objects, so no two readers can resolve a stage differently.

Example::

    plans = plan_stages(config.train)
    plans[1].learning_rate, plans[1].batch_size, plans[1].optimizer.name
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from kplug.config.schema import OptimizerConfig, ScheduleConfig, TrainConfig, merged_optimizer
from kplug.model.freezing import TrainableSet


@dataclass(frozen=True)
class LayerRates:
    """A stage's per-layer learning-rate rules (the base rate is ``StagePlan.learning_rate``).

    Attributes:
        per_layer: layer-path pattern -> absolute rate, first match wins (``{}``: none).
        layer_decay: the backbone's top block trains at ``rate * decay``, the next at
            ``rate * decay**2``, ... (``None``: no decay).
    """

    per_layer: Mapping[str, float]
    layer_decay: float | None


@dataclass(frozen=True)
class StagePlan:
    """One stage's resolved settings: read-only, built once per run by ``plan_stages``.

    Attributes:
        index: 0-based position of the stage.
        where: the config path of the stage for error messages (``train.stages[1]``, or
            ``train`` when the run has no ``stages``).
        epochs: epochs the stage trains.
        batch_size: its batch size (the stage's or ``train.batch_size``).
        batch_size_where: the config path that set ``batch_size``.
        trainable: which layers it trains.
        optimizer: ``train.optimizer`` with the stage's changes (name, learning_rate,
            weight_decay, momentum, clipnorm, gradient_accumulation_steps).
        schedule: its learning-rate schedule (the stage's or ``train.schedule``).
        rates: its per-layer learning-rate rules.
        optimizer_state: ``auto``, ``carry`` or ``reset`` the previous stage's optimizer state.
    """

    index: int
    where: str
    epochs: int
    batch_size: int
    batch_size_where: str
    trainable: TrainableSet
    optimizer: OptimizerConfig
    schedule: ScheduleConfig
    rates: LayerRates
    optimizer_state: Literal["auto", "carry", "reset"]

    @property
    def learning_rate(self) -> float:
        """The stage's base learning rate (before its schedule and per-layer rules)."""
        return self.optimizer.learning_rate

    @property
    def accumulation(self) -> int:
        """Batches whose gradients make one optimizer update (1: no accumulation)."""
        return self.optimizer.gradient_accumulation_steps or 1

    def updates_per_epoch(self, train_rows: int) -> int:
        """Optimizer updates in one epoch over ``train_rows`` training examples."""
        return math.ceil(math.ceil(train_rows / self.batch_size) / self.accumulation)


def plan_stage(train: TrainConfig, index: int) -> StagePlan:
    """The plan of stage ``index`` of ``train.resolved_stages()``."""
    stage = train.resolved_stages()[index]
    where = f"train.stages[{index}]" if train.stages else "train"
    return StagePlan(
        index=index,
        where=where,
        epochs=stage.epochs,
        batch_size=stage.batch_size or train.batch_size,
        batch_size_where=f"{where}.batch_size" if stage.batch_size else "train.batch_size",
        trainable=TrainableSet.of_stage(stage),
        optimizer=merged_optimizer(train.optimizer, stage.optimizer).model_copy(),
        schedule=(stage.schedule or train.schedule).model_copy(),
        rates=LayerRates(
            per_layer=MappingProxyType(
                dict(train.learning_rates if stage.learning_rates is None else stage.learning_rates)
            ),
            layer_decay=train.layer_decay if stage.layer_decay is None else stage.layer_decay,
        ),
        optimizer_state=stage.optimizer_state,
    )


def plan_stages(train: TrainConfig) -> tuple[StagePlan, ...]:
    """Every stage's plan, in order: the configured stages, or the one stage of ``train.epochs``."""
    return tuple(plan_stage(train, index) for index in range(len(train.resolved_stages())))
