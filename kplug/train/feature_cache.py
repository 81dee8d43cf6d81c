"""Cached features: a stage that trains only the heads runs the frozen backbone once per split.

When nothing before the heads changes during a stage (no backbone layer trains, no
augmentation, no random layer in the backbone, one device, float32), the backbone's
output for an example is the same at every step. ``stage_cache`` decides that per stage
(``train.cache_features``: auto, true or false; true fails on a head-only stage that cannot); ``CachedSplits`` computes the features of
the train and validation splits once, in inference mode, and keeps them until a stage
that may change the backbone runs. The trainer then fits ``HeadsOnFeatures`` on them with
the same batch order, optimizer and callbacks, so weights, metrics and checkpoints equal an
uncached run's (up to float rounding of the backbone's batched forward pass).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import keras
import numpy as np

from kplug.data.batches import num_rows
from kplug.errors import ConfigError
from kplug.model.features import feature_extractor, random_layers, trainable_layers
from kplug.plugin.distribution import Distribution
from kplug.plugin.precision import Precision
from kplug.plugin.resolve import ResolvedRun

# auto declines when the train and validation features would take more memory than this
AUTO_LIMIT_BYTES = 2 * 1024**3
SHOWN = 3  # layer paths named in a reason


@dataclass(frozen=True)
class CacheDecision:
    """Whether one stage trains its heads on cached features.

    Attributes:
        use: cache the backbone's features for this stage.
        reason: why not (empty when ``use``).
    """

    use: bool
    reason: str = ""

    def report(self) -> dict[str, Any]:
        """The stage's ``feature_cache`` entry in ``report.json``."""
        return {"used": True} if self.use else {"used": False, "reason": self.reason}


def _named(paths: list[str]) -> str:
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def _why_not(
    model: keras.Model,
    run: ResolvedRun,
    training_model: keras.Model | None,
    precision: Precision,
    distribution: Distribution,
    spec: Any,
    rows: int,
    setting: Literal["auto", True, False],
) -> str:
    """Why the backbone's features cannot be cached in the stage now applied to ``model`` ('' if they can)."""
    if setting is False:
        return "train.cache_features is false"
    if training_model is not None:
        return "a plugin trains a wrapped model (kplug_training_model, e.g. distillation)"
    if run.augmentations:
        names = ", ".join(chosen.component.name for chosen in run.augmentations)
        return f"augment ({names}) changes the inputs at every step"
    if distribution.replicas > 1 or distribution.processes > 1:
        return f"distribution '{distribution.name}' places the model on several devices"
    if precision.name != "float32":
        return f"precision '{precision.name}' (cached features are float32 only)"
    training = trainable_layers(model, "backbone")
    if training:
        return f"backbone layers train or update state in this stage ({_named(training)})"
    drawing = random_layers(model, "backbone")
    if drawing:
        return (
            f"backbone layers draw random numbers in training mode ({_named(drawing)}); "
            f"a backbone with dropout 0 can be cached"
        )
    size = feature_bytes(model, spec, rows)  # last: it traces the backbone symbolically
    if size < 0:
        return "the backbone returns several outputs"
    if setting == "auto" and size > AUTO_LIMIT_BYTES:
        return (
            f"the features would take {size / 1024**3:.1f} GiB "
            f"(auto caches up to {AUTO_LIMIT_BYTES / 1024**3:.0f} GiB; true caches anyway)"
        )
    return ""


def feature_bytes(model: keras.Model, spec: Any, rows: int) -> int:
    """Memory the backbone's features of ``rows`` examples take (-1: several outputs)."""
    output = feature_extractor(model, spec).output
    if not isinstance(output, keras.KerasTensor):
        return -1
    per_row = int(np.prod(output.shape[1:])) * np.dtype(output.dtype).itemsize
    return per_row * rows


def stage_cache(
    *,
    model: keras.Model,
    run: ResolvedRun,
    training_model: keras.Model | None,
    precision: Precision,
    distribution: Distribution,
    spec: Any,
    rows: int,
    where: str,
) -> CacheDecision:
    """Decide whether the stage whose trainable set is applied to ``model`` caches features.

    Args:
        model: the run model, with the stage's trainable layers set.
        run: the resolved run (its config's ``train.cache_features`` and augmentations).
        training_model: a plugin's wrapper of the model, or ``None``.
        precision: the run's precision.
        distribution: the run's placement.
        spec: the model's input spec (``PreparedData.spec``).
        rows: examples whose features would be kept (train and validation).
        where: the stage's config path, named in an error.

    Raises:
        ConfigError: ``train.cache_features`` is true and a stage that trains only the heads cannot
            cache (one that trains backbone weights just runs uncached).
    """
    setting = run.config.train.cache_features
    reason = _why_not(model, run, training_model, precision, distribution, spec, rows, setting)
    # true asks for every head-only stage to cache; a stage that trains the backbone never can
    head_only = not model.get_layer("backbone").trainable_weights
    if reason and setting is True and head_only:
        raise ConfigError(
            f"train.cache_features = true, but {where} cannot train on cached features: {reason}. "
            f"Use auto to cache only the stages that can."
        )
    return CacheDecision(not reason, reason)


class CachedSplits:
    """The backbone's features of each split, computed once and kept while the backbone is unchanged."""

    def __init__(self) -> None:
        self._features: dict[str, np.ndarray] = {}
        self._extractor: keras.Model | None = None  # one model, so its predict function is traced once
        self.seconds = 0.0  # time spent computing features, all stages

    def clear(self) -> None:
        """Forget every split's features (a stage that may change the backbone is about to run)."""
        self._features.clear()

    def features(
        self, model: keras.Model, spec: Any, inputs: dict[str, Any], batch_size: int
    ) -> dict[str, np.ndarray]:
        """The backbone's output for every example of each split in ``inputs`` (by split name).

        Splits not computed yet go through the backbone together, in inference mode, in one
        ``predict`` call with the stage's batch size (larger batches were slower for MiniLM on
        CPU: 256 rows took twice as long per example as 32 on tensorflow).
        """
        missing = [split for split in inputs if split not in self._features]
        if missing:
            started = time.perf_counter()
            if self._extractor is None:
                self._extractor = feature_extractor(model, spec)
            joined = keras.tree.map_structure(
                lambda *parts: np.concatenate(parts), *(inputs[split] for split in missing)
            )
            computed = self._extractor.predict(joined, batch_size=batch_size, verbose=0)
            ends = np.cumsum([num_rows(inputs[split]) for split in missing])
            for split, part in zip(missing, np.split(computed, ends[:-1]), strict=True):
                self._features[split] = part
            self.seconds += time.perf_counter() - started
        return {split: self._features[split] for split in inputs}
