"""LoRA fine-tuning: low-rank adapters on Dense and EinsumDense layers (Keras' ``enable_lora``).

Turned on by naming the ``lora`` callback in a run config::

    callbacks:
      - {name: lora, options: {rank: 4, targets: ["backbone/*"], train: ["heads/*"]}}

When the model is built, every Dense/EinsumDense layer whose path matches ``targets``
gets rank-``rank`` adapters. At the start of every stage, after the stage's own trainable
set is applied, the adapted layers train only their adapters (their kernels, and biases
unless ``train_bias``, stay frozen); layers matching ``train`` (the new heads, by default)
train fully; every other layer is frozen. When the run ends, the adapters are merged into
the kernels and ``model.keras`` is written as a plain model (no LoRA in its config), so
``kplug predict`` and ``kplug export`` serve the merged model; ``report.json`` gets a
``lora`` section (adapted layers, adapter and total parameter counts).

Keras saves an adapted layer's kernel merged and zeroes the adapters when it loads one
(``Dense.load_own_variables``): right for a finished model, wrong for a checkpoint, where
the run would go on from a frozen merged kernel and zero adapters, whose gradients are
zero. So while a run trains, ``LoraWeights`` saves the base kernels and adapters as they
are with every checkpoint, and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import json
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from kplug import plugin
from kplug.plugin import ConfigError, PathPattern, PluginError, iter_layers

from kplug_compress.model_state import ModelState

if TYPE_CHECKING:
    from kplug.plugin import FitResult, RunContext

NAME = "lora"
ADAPTABLE = (keras.layers.Dense, keras.layers.EinsumDense)


class LoraAdapters(keras.callbacks.Callback):
    """LoRA settings of a run; during ``fit`` it checks that only adapters train in adapted layers.

    Args:
        rank: rank of the adapters (the low-rank update is ``A @ B`` with ``A: in x rank``).
        alpha: scale numerator (the update is scaled by ``alpha / rank``); default ``rank``.
        targets: layer-path patterns (globs or ``re:`` regexes); matching Dense/EinsumDense
            layers get adapters.
        train: layer-path patterns of layers that train fully (e.g. new heads).
        train_bias: also train the biases of adapted layers.
    """

    def __init__(
        self,
        rank: int = 4,
        alpha: float | None = None,
        targets: list[str] | None = None,
        train: list[str] | None = None,
        train_bias: bool = False,
    ) -> None:
        super().__init__()
        if rank < 1:
            raise ConfigError(f"lora option rank = {rank}: must be a positive integer.")
        if alpha is not None and alpha <= 0:
            raise ConfigError(f"lora option alpha = {alpha}: must be positive (or omitted: alpha = rank).")
        self.rank = rank
        self.alpha = alpha
        self.targets = list(targets or ["backbone/*"])
        self.train = list(train if train is not None else ["heads/*"])
        self._targets = [PathPattern.compile(p, "lora option targets") for p in self.targets]
        self._train = [PathPattern.compile(p, "lora option train") for p in self.train]
        self.train_bias = train_bias

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        trainable = {id(v) for v in self.model.trainable_variables}
        leaked = [layer.name for _, layer in adapted_layers(self.model) if id(layer._kernel) in trainable]
        if leaked:
            raise PluginError(
                f"lora: the base kernels of {', '.join(leaked)} are trainable; only their adapters "
                f"should be (did another plugin unfreeze them after kplug_on_stage_start?)."
            )


def lora_settings(run: RunContext) -> LoraAdapters | None:
    """The run's ``lora`` callback settings, or ``None`` when the run does not use LoRA."""
    return run.callback(NAME)


def adapted_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """``(path, layer)`` of every layer with LoRA enabled."""
    return [(path, layer) for path, layer in iter_layers(model) if getattr(layer, "lora_enabled", False)]


class LoraWeights(ModelState):
    """The base kernels and adapters of a model's adapted layers, saved unmerged with the model."""

    attribute = "_kplug_lora_weights"

    def __init__(self, model: keras.Model) -> None:
        super().__init__(name="lora_weights")
        self._model = weakref.ref(model)  # not a tracked sublayer

    def _variables(self) -> list[tuple[str, keras.Variable]]:
        return [
            (f"{path}/{name}".replace("/", "."), variable)
            for path, layer in adapted_layers(self._model())
            for name, variable in (
                ("kernel", layer._kernel),
                ("lora_kernel_a", layer.lora_kernel_a),
                ("lora_kernel_b", layer.lora_kernel_b),
            )
        ]

    def save_own_variables(self, store: Any) -> None:
        for key, variable in self._variables():
            store[key] = variable

    def load_own_variables(self, store: Any) -> None:
        saved = set(store.keys())
        for key, variable in self._variables():
            if key in saved:
                variable.assign(store[key])


def _matches(path: str, patterns: list[PathPattern]) -> bool:
    return any(pattern.matches(path) for pattern in patterns)


def enable_adapters(model: keras.Model, settings: LoraAdapters) -> list[str]:
    """Enable LoRA on the Dense/EinsumDense layers matching ``settings.targets``.

    Returns:
        The paths of the adapted layers.

    Raises:
        ConfigError: the targets match no Dense/EinsumDense layer (listing those there are).
    """
    candidates = [(path, layer) for path, layer in iter_layers(model) if isinstance(layer, ADAPTABLE)]
    chosen = [(path, layer) for path, layer in candidates if _matches(path, settings._targets)]
    if not chosen:
        raise ConfigError(
            f"lora option targets = {settings.targets}: no Dense or EinsumDense layer matches; "
            f"this model has {', '.join(path for path, _ in candidates) or 'none'}."
        )
    for _, layer in chosen:
        if not layer.lora_enabled:
            layer.enable_lora(settings.rank, lora_alpha=settings.alpha)
    return [path for path, _ in chosen]


def freeze_all_but_adapters(model: keras.Model, settings: LoraAdapters) -> None:
    """In the layers a stage trains, train only adapters, ``train`` layers and (optionally) biases."""
    for path, layer in iter_layers(model):
        if layer.trainable is False or list(getattr(layer, "_layers", [])):
            continue
        if getattr(layer, "lora_enabled", False):
            layer._kernel.trainable = False
            if layer.bias is not None:
                layer.bias.trainable = settings.train_bias
        elif not _matches(path, settings._train):
            layer.trainable = False


def adapter_summary(model: keras.Model, settings: LoraAdapters) -> dict[str, Any]:
    """What ``report.json``'s ``lora`` section holds."""
    layers = adapted_layers(model)
    adapters = sum(
        int(np.prod(v.shape)) for _, layer in layers for v in (layer.lora_kernel_a, layer.lora_kernel_b)
    )
    return {
        "rank": settings.rank,
        "alpha": settings.alpha if settings.alpha is not None else settings.rank,
        "layers": [path for path, _ in layers],
        "adapter_parameters": adapters,
        "merged_parameters": int(model.count_params()) - adapters,
    }


def _strip_lora(config: Any) -> Any:
    if isinstance(config, dict):
        return {k: _strip_lora(v) for k, v in config.items() if k not in ("lora_rank", "lora_alpha")}
    if isinstance(config, list):
        return [_strip_lora(v) for v in config]
    return config


def write_merged(model: keras.Model, path: Path) -> None:
    """Save ``model`` with its adapters merged into the kernels, as a plain model without LoRA.

    Keras already saves an adapted layer's kernel merged (``kernel + alpha/rank * A @ B``);
    dropping ``lora_rank``/``lora_alpha`` from the saved config makes it load as a plain layer.
    """
    with tempfile.TemporaryDirectory(prefix="kplug-lora-") as scratch:
        saved = Path(scratch) / "adapted.keras"
        model.save(saved)

        def write(target: Path) -> None:
            with zipfile.ZipFile(saved) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
                for item in source.infolist():
                    data = source.read(item.filename)
                    if item.filename == "config.json":
                        data = json.dumps(_strip_lora(json.loads(data))).encode()
                    out.writestr(item, data)

        plugin.atomic_write(path, write)


def on_fit_start(run: RunContext, model: keras.Model) -> None:
    """Add the adapters before the first stage (and before a resumed run restores its weights)."""
    settings = lora_settings(run)
    if settings is not None:
        enable_adapters(model, settings)
        LoraWeights(model).attach(model)


def on_stage_start(run: RunContext, model: keras.Model, stage: int) -> None:
    """Freeze what LoRA does not train, after the stage's trainable set is applied."""
    settings = lora_settings(run)
    if settings is not None:
        freeze_all_but_adapters(model, settings)


def on_fit_end(run: RunContext, result: FitResult) -> None:
    """Replace ``model.keras`` with the merged plain model and report the adapters."""
    settings = lora_settings(run)
    if settings is None:
        return
    LoraWeights.detach(result.model)  # training is over: the model file holds the merged kernels only
    write_merged(result.model, result.run_dir / plugin.MODEL_FILE)
    result.report["lora"] = adapter_summary(result.model, settings)
    plugin.write_json(result.run_dir / plugin.REPORT_FILE, result.report)
