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
"""

from __future__ import annotations

import fnmatch
import zlib
from typing import TYPE_CHECKING, Any, Literal

import keras
import numpy as np
from kplug import rundir
from kplug.errors import ConfigError
from kplug.transfer import iter_layers

if TYPE_CHECKING:
    from kplug.trainer import FitResult, Trainer

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
    """``(path, layer)`` of the kernel layers matching the glob ``targets``."""
    return [
        (path, layer)
        for path, layer in iter_layers(model)
        if isinstance(layer, PRUNABLE) and any(fnmatch.fnmatchcase(path, p) for p in targets)
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
        targets: glob patterns over layer paths (``backbone/*``, ``backbone/conv2``).
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
        self._initial: list[float] = []
        self._step = 0
        self._total_steps = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._layers = prunable_layers(self.model, self.targets)
        if not self._layers:
            candidates = [path for path, layer in iter_layers(self.model) if isinstance(layer, PRUNABLE)]
            raise ConfigError(
                f"prune option targets = {self.targets}: no Dense/EinsumDense/convolution layer matches; "
                f"this model has {', '.join(candidates) or 'none'}."
            )
        # Weights pruned by an earlier stage start masked, so fine-tuning keeps them at zero.
        values = [keras.ops.convert_to_numpy(kernel_variable(layer)) for _, layer in self._layers]
        self._masks = [v != 0 for v in values]
        self._initial = [sparsity(v) for v in values]
        self._step = 0
        self._total_steps = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self._total_steps:
            steps = self.params.get("steps") or 1
            self._total_steps = steps * max(self.params.get("epochs", 1) - epoch, 1)

    def target_at(self, step: int, initial: float) -> float:
        """The scheduled sparsity of a layer that had ``initial`` sparsity at the stage start."""
        first = self.begin * self._total_steps
        if step < first:
            return initial
        if self.schedule == "constant" or initial >= self.target_sparsity:
            return max(initial, self.target_sparsity)
        span = max((self.end - self.begin) * self._total_steps, 1.0)
        return polynomial_sparsity((step - first) / span, initial, self.target_sparsity)

    def _update_masks(self) -> None:
        for index, (_, layer) in enumerate(self._layers):
            values = keras.ops.convert_to_numpy(kernel_variable(layer))
            target = self.target_at(self._step, self._initial[index])
            self._masks[index] = grow_mask(values, self._masks[index], target)

    def _apply_masks(self) -> None:
        for (_, layer), mask in zip(self._layers, self._masks, strict=True):
            variable = kernel_variable(layer)
            variable.assign(keras.ops.multiply(variable, keras.ops.cast(mask, variable.dtype)))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.model  # noqa: B018 - on jax, reading .model syncs the training state into the variables
        self._step += 1
        if self._step % self.frequency == 0 or self._step >= self.end * self._total_steps:
            self._update_masks()
        self._apply_masks()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.model  # noqa: B018
        self._step = max(self._step, int(np.ceil(self.end * self._total_steps)))
        self._update_masks()
        self._apply_masks()


def pruning_settings(trainer: Trainer) -> MagnitudePruning | None:
    """The run's ``prune`` callback settings, or ``None`` when the run does not prune."""
    for chosen in trainer.run.callbacks:
        if chosen.component.name == NAME:
            return chosen.build()
    return None


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


def on_fit_end(trainer: Trainer, result: FitResult) -> None:
    """Add the ``pruning`` section (sparsity per layer, pruned model's metrics) to report.json."""
    settings = pruning_settings(trainer)
    if settings is None:
        return
    report = sparsity_report(result.model, settings.targets)
    result.report["pruning"] = {
        "target_sparsity": settings.target_sparsity,
        **report,
        "metrics": result.metrics,
    }
    rundir.write_json(result.run_dir / rundir.REPORT_FILE, result.report)
