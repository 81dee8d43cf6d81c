"""Magnitude pruning to a target sparsity, on a schedule over each training stage.

Turned on by naming the ``prune`` callback in a run config::

    callbacks:
      - {name: prune, options: {target_sparsity: 0.7, targets: ["backbone/*"]}}
    train:
      stages:
        - {epochs: 3}   # sparsity ramps up to 0.7 over this stage
        - {epochs: 2, learning_rate: 1.0e-4}   # fine-tuning: the masks are kept

Kernels of Dense, EinsumDense and convolution layers whose path matches ``targets`` are
pruned layer by layer: the smallest-magnitude weights are set to zero and kept at zero
(the mask is applied after every train batch). The sparsity follows the polynomial
schedule of Zhu & Gupta (2017), ``s(t) = s_f + (s_0 - s_f) (1 - t)^3``, from the sparsity
a layer has when the stage starts (0 for a dense model) to ``target_sparsity``, over the
fraction ``[begin, end]`` of the stage's steps, updating the masks every ``frequency``
steps. A stage that starts at the target only keeps the masks, so pruned weights stay
pruned through later fine-tuning stages. ``report.json`` gets a ``pruning`` section: the
sparsity of every pruned layer, the overall sparsity, and the pruned model's metrics.

Where a stage's schedule stands (its step, its length, each layer's starting sparsity) is a
``PruningProgress`` saved with every checkpoint written mid-stage; the masks are the zeros
of the kernels. So ``kplug train --resume`` continues the schedule where it stopped, mid-epoch
included, instead of starting it again.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Literal

import keras
import numpy as np
from kplug import plugin
from kplug.plugin import ConfigError, PathPattern, iter_layers

from kplug_compress.model_state import ModelState

if TYPE_CHECKING:
    from kplug.plugin import FitResult, RunContext

NAME = "prune"
PRUNABLE = (
    keras.layers.Dense,
    keras.layers.EinsumDense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


def kernel_variable(layer: keras.layers.Layer) -> keras.Variable:
    """The variable holding a layer's (unmerged) kernel."""
    variable = getattr(layer, "_kernel", None)
    return variable if variable is not None else layer.kernel


def prunable_layers(model: keras.Model, targets: list[str]) -> list[tuple[str, keras.layers.Layer]]:
    """``(path, layer)`` of the kernel layers matching the layer-path patterns ``targets``."""
    patterns = [PathPattern.compile(p, "prune option targets") for p in targets]
    return [
        (path, layer)
        for path, layer in iter_layers(model)
        if isinstance(layer, PRUNABLE) and any(p.matches(path) for p in patterns)
    ]


def sparsity(values: np.ndarray) -> float:
    """Fraction of exact zeros."""
    return float(np.mean(values == 0)) if values.size else 0.0


def polynomial_sparsity(progress: float, initial: float, final: float) -> float:
    """Zhu & Gupta's cubic schedule at ``progress`` in [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


def grow_mask(values: np.ndarray, mask: np.ndarray, target: float) -> np.ndarray:
    """Prune the smallest-magnitude unmasked weights until ``target`` of them are pruned.

    The mask only grows: a weight pruned before stays pruned.
    """
    wanted = int(np.floor(target * values.size))
    pruned = int(values.size - mask.sum())
    if wanted <= pruned:
        return mask
    magnitude = np.where(mask, np.abs(values), np.inf).ravel()
    order = np.argsort(magnitude, kind="stable")[: wanted - pruned]
    grown = np.ones(values.size, dtype=bool)
    grown[order] = False
    return grown.reshape(values.shape) & mask


class MagnitudePruning(keras.callbacks.Callback):
    """Prune kernels to ``target_sparsity`` over each stage and keep them pruned.

    Args:
        target_sparsity: fraction of each pruned kernel's weights that end up zero.
        targets: layer-path patterns, globs or ``re:`` regexes (``backbone/*``, ``backbone/conv2``).
        begin: fraction of the stage's steps at which pruning starts.
        end: fraction of the stage's steps at which the target is reached.
        frequency: steps between mask updates (the masks are applied after every step).
        schedule: ``polynomial`` (gradual) or ``constant`` (the target at ``begin``).
    """

    def __init__(
        self,
        target_sparsity: float = 0.5,
        targets: list[str] | None = None,
        begin: float = 0.0,
        end: float = 0.7,
        frequency: int = 10,
        schedule: Literal["polynomial", "constant"] = "polynomial",
    ) -> None:
        super().__init__()
        if not 0.0 <= target_sparsity < 1.0:
            raise ConfigError(f"prune option target_sparsity = {target_sparsity}: must be in [0, 1).")
        if not 0.0 <= begin <= end <= 1.0:
            raise ConfigError(f"prune options begin = {begin}, end = {end}: need 0 <= begin <= end <= 1.")
        if frequency < 1:
            raise ConfigError(f"prune option frequency = {frequency}: must be a positive number of steps.")
        self.target_sparsity = target_sparsity
        self.targets = list(targets or ["backbone/*"])
        self.begin, self.end = begin, end
        self.frequency = frequency
        self.schedule = schedule
        self._layers: list[tuple[str, keras.layers.Layer]] = []
        self._masks: list[np.ndarray] = []
        self._progress = PruningProgress()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._layers = prunable_layers(self.model, self.targets)
        if not self._layers:
            candidates = [path for path, layer in iter_layers(self.model) if isinstance(layer, PRUNABLE)]
            raise ConfigError(
                f"prune option targets = {self.targets}: no Dense/EinsumDense/convolution layer matches; "
                f"this model has {', '.join(candidates) or 'none'}."
            )
        # Pruned weights are exactly zero, so the masks are where the kernels are not: weights
        # pruned by an earlier stage (or before a resume) start masked and stay at zero.
        values = [keras.ops.convert_to_numpy(kernel_variable(layer)) for _, layer in self._layers]
        self._masks = [v != 0 for v in values]
        # the stage's progress, restored with a checkpoint when the run resumes mid-stage
        self._progress = PruningProgress.of(self.model) or PruningProgress().attach(self.model)
        if self._progress.initial is None:  # the stage starts: from the sparsity the layers have now
            self._progress.initial = [sparsity(v) for v in values]
        elif len(self._progress.initial) != len(self._layers):
            raise ConfigError(
                f"prune option targets = {self.targets}: matches {len(self._layers)} layers, but the "
                f"checkpoint this run resumes from pruned {len(self._progress.initial)}; resume with "
                f"the run's own prune options."
            )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._progress.total_steps:  # the first fit of a stage covers the whole stage
            steps = self.params.get("steps") or 1
            self._progress.total_steps = steps * max(self.params.get("epochs", 1) - epoch, 1)

    def target_at(self, step: int, initial: float) -> float:
        """The scheduled sparsity of a layer that had ``initial`` sparsity at the stage start."""
        total = self._progress.total_steps
        first = self.begin * total
        if step < first:
            return initial
        if self.schedule == "constant" or initial >= self.target_sparsity:
            return max(initial, self.target_sparsity)
        span = max((self.end - self.begin) * total, 1.0)
        return polynomial_sparsity((step - first) / span, initial, self.target_sparsity)

    def _update_masks(self) -> None:
        for index, (_, layer) in enumerate(self._layers):
            values = keras.ops.convert_to_numpy(kernel_variable(layer))
            target = self.target_at(self._progress.step, self._progress.initial[index])
            self._masks[index] = grow_mask(values, self._masks[index], target)

    def _apply_masks(self) -> None:
        for (_, layer), mask in zip(self._layers, self._masks, strict=True):
            variable = kernel_variable(layer)
            variable.assign(keras.ops.multiply(variable, keras.ops.cast(mask, variable.dtype)))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.model  # noqa: B018 - on jax, reading .model syncs the training state into the variables
        progress = self._progress
        progress.step += 1
        if progress.step % self.frequency == 0 or progress.step >= self.end * progress.total_steps:
            self._update_masks()
        self._apply_masks()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        model = self.model  # on jax, reading .model syncs the training state into the variables
        progress = self._progress
        if progress.step < progress.total_steps and not model.stop_training:
            return  # the stage goes on in another fit (after the rest of an epoch resumed mid-way)
        progress.step = max(progress.step, int(np.ceil(self.end * progress.total_steps)))
        self._update_masks()
        self._apply_masks()
        PruningProgress.detach(model)  # the stage is done: the next one starts its own schedule


class PruningProgress(ModelState):
    """Where a stage's pruning schedule stands, saved with the model so a resumed run continues it.

    Attributes:
        initial: each pruned layer's sparsity when the stage started, in layer order
            (``None``: the stage has not started pruning).
        total_steps: the stage's training steps.
        step: steps trained in the stage so far.
    """

    attribute = "_kplug_pruning_progress"

    def __init__(self) -> None:
        super().__init__(name="pruning_progress")
        self.initial: list[float] | None = None
        self.total_steps = 0
        self.step = 0

    def save_own_variables(self, store: Any) -> None:
        if self.initial is not None:
            store["steps"] = np.array([self.step, self.total_steps], dtype="int64")
            store["initial"] = np.array(self.initial, dtype="float64")

    def load_own_variables(self, store: Any) -> None:
        if "steps" in set(store.keys()):  # else saved between stages: the next one starts afresh
            self.step, self.total_steps = (int(n) for n in np.asarray(store["steps"]))
            self.initial = [float(value) for value in np.asarray(store["initial"])]


def pruning_settings(run: RunContext) -> MagnitudePruning | None:
    """The run's ``prune`` callback settings, or ``None`` when the run does not prune."""
    return run.callback(NAME)


def sparsity_report(model: keras.Model, targets: list[str]) -> dict[str, Any]:
    """Per-layer and overall kernel sparsity, and the weights' size raw and zlib-compressed."""
    layers = {}
    zeros = total = 0
    for path, layer in prunable_layers(model, targets):
        values = keras.ops.convert_to_numpy(kernel_variable(layer))
        layers[path] = round(sparsity(values), 4)
        zeros += int(np.sum(values == 0))
        total += values.size
    weights = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in model.weights]).astype("float32")
    return {
        "layers": layers,
        "overall": round(zeros / total, 4) if total else 0.0,
        "pruned_weights": zeros,
        "weights_bytes": int(weights.nbytes),
        "weights_bytes_zlib": len(zlib.compress(weights.tobytes(), 6)),
    }


def on_stage_start(run: RunContext, model: keras.Model, stage: int) -> None:
    """Start each stage's schedule afresh (a resumed run then loads where it stood with the checkpoint)."""
    if pruning_settings(run) is not None:
        PruningProgress().attach(model)


def on_fit_end(run: RunContext, result: FitResult) -> None:
    """Add the ``pruning`` section (sparsity per layer, pruned model's metrics) to report.json."""
    settings = pruning_settings(run)
    if settings is None:
        return
    report = sparsity_report(result.model, settings.targets)
    result.report["pruning"] = {
        "target_sparsity": settings.target_sparsity,
        **report,
        "metrics": result.metrics,
    }
    plugin.write_json(result.run_dir / plugin.REPORT_FILE, result.report)
