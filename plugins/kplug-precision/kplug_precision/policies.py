"""Mixed-precision policies with float32 islands chosen by layer name, and dynamic loss scaling.

Under ``mixed_float16`` / ``mixed_bfloat16`` every layer keeps float32 variables and
computes in half precision, except the *float32 islands*: layers that stay float32
because half precision hurts them most (the classic recipe: the first layer, the
normalisation layers, the softmax and the heads). float16 training also wraps every
stage's optimizer in ``keras.optimizers.LossScaleOptimizer`` (dynamic loss scaling),
which works on all three backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import keras
import kplug
from kplug.plugin import ConfigError, PathPattern, bare_name_hint, iter_layers, no_match_error
from pydantic import PositiveFloat, PositiveInt

if TYPE_CHECKING:
    from kplug.plugin import Register

# Selectors (bare words) in ``float32_layers``; anything else is a layer-path pattern (kplug.model.paths).
SELECTORS = ("first", "normalization", "softmax", "heads")
DEFAULT_FLOAT32_LAYERS = ["first", "normalization", "softmax", "heads"]
# Layers that call keras.ops.dot_product_attention, which XLA cannot run in float16 on CPU.
_ATTENTION_LAYERS = ("MultiHeadAttention", "GroupedQueryAttention")


def _is_leaf(layer: keras.layers.Layer) -> bool:
    return not list(layer._flatten_layers(include_self=False, recursive=False))


def _is_softmax(layer: keras.layers.Layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) in ("softmax", "log_softmax")


def _select(selector: str, layers: list[tuple[str, keras.layers.Layer]]) -> list[str]:
    """Layer paths picked by one selector word."""
    if selector == "first":
        weighted = [path for path, layer in layers if _is_leaf(layer) and layer.weights]
        return weighted[:1]
    if selector == "normalization":
        return [path for path, layer in layers if type(layer).__name__.endswith("Normalization")]
    if selector == "softmax":
        return [path for path, layer in layers if _is_softmax(layer)]
    return [path for path, _ in layers if path.startswith("heads/") and path.count("/") == 1]


def _match(pattern: str, layers: list[tuple[str, keras.layers.Layer]]) -> list[str]:
    """Layer paths one pattern (a glob or ``re:`` regex on layer paths) selects.

    Raises:
        ConfigError: the pattern matches no layer path; when it matches layer *names*
            (the plugin's old dialect, e.g. ``conv1``), the error gives the paths to write.
    """
    where = "precision.options.float32_layers"
    compiled = PathPattern.compile(pattern, where)
    hits = [path for path, _ in layers if compiled.matches(path)]
    if hits:
        return hits
    hint = (
        bare_name_hint(compiled, layers)
        or f"Use a selector ({', '.join(SELECTORS)}) or a pattern on layer paths."
    )
    raise no_match_error(where, pattern, (path for path, _ in layers), hint=hint)


def resolve_islands(model: keras.Model, patterns: list[str]) -> list[str]:
    """The layer paths that ``patterns`` (selectors and layer-path patterns) keep in float32.

    Raises:
        ConfigError: a pattern that matches no layer (selectors may match none).
    """
    layers = list(iter_layers(model))
    chosen: list[str] = []
    for pattern in patterns:
        hits = _select(pattern, layers) if pattern in SELECTORS else _match(pattern, layers)
        chosen += [path for path in hits if path not in chosen]
    # a layer inside a chosen container is covered by it
    return [path for path in chosen if not any(path.startswith(other + "/") for other in chosen)]


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _layers_under(model: keras.Model, roots: list[str]) -> Iterator[tuple[str, keras.layers.Layer]]:
    for path, layer in iter_layers(model):
        if _inside(path, roots):
            yield path, layer


class MixedPrecision(kplug.Precision):
    """A mixed policy whose float32 islands are chosen by layer-name pattern.

    Args:
        policy: ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        float32_layers: selectors (``first``, ``normalization``, ``softmax``, ``heads``)
            and layer-path patterns of ``kplug.model.paths`` (``backbone/conv*``,
            ``*attention*``, ``re:backbone/block[01]/.*``).
        loss_scale: ``{"initial_scale": ..., "growth_interval": ...}`` to wrap each
            optimizer in a ``LossScaleOptimizer``; ``None`` for no loss scaling.
    """

    def __init__(
        self, policy: str, float32_layers: list[str], loss_scale: dict[str, Any] | None = None
    ) -> None:
        super().__init__(policy)
        self.float32_layers = list(float32_layers)
        self.loss_scale = loss_scale
        self.islands: list[str] = []

    def configure_model(self, model: keras.Model) -> None:
        """Set the islands (and everything inside them) to float32 compute."""
        self.islands = resolve_islands(model, self.float32_layers)
        for _, layer in _layers_under(model, self.islands):
            layer.dtype_policy = "float32"
        self._check_backend(model)

    def _check_backend(self, model: keras.Model) -> None:
        if self.name != "mixed_float16" or keras.backend.backend() != "jax":
            return
        import jax  # jax-only check, inside the component that needs it

        if jax.devices()[0].platform != "cpu":
            return
        half = [
            path
            for path, layer in iter_layers(model)
            if type(layer).__name__ in _ATTENTION_LAYERS and layer.compute_dtype == "float16"
        ]
        if half:
            raise ConfigError(
                f"precision.policy = 'mixed_float16': Keras on the jax backend cannot run attention "
                f"layers in float16 on CPU (XLA: dot_general F16_F16_F32 is not supported on CPU); "
                f"float16 attention on CPU works on the tensorflow and torch backends. Layers: "
                f"{', '.join(half)}. Add them to precision.options.float32_layers, use mixed_bfloat16, "
                f"or set KERAS_BACKEND to tensorflow or torch."
            )

    def wrap_optimizer(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
        """Wrap in dynamic loss scaling when configured (float16)."""
        if self.loss_scale is None or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(
            optimizer,
            initial_scale=self.loss_scale["initial_scale"],
            dynamic_growth_steps=self.loss_scale["growth_interval"],
        )

    def describe(self) -> dict[str, Any]:
        """Islands and loss scaling for ``report.json``."""
        return {
            "float32_layers": self.float32_layers,
            "islands": self.islands,
            "loss_scale": self.loss_scale,
        }


def mixed_float16(
    float32_layers: list[str] | None = None,
    initial_scale: PositiveFloat = 2.0**15,
    growth_interval: PositiveInt = 2000,
) -> MixedPrecision:
    """float16 compute, float32 variables and islands, dynamic loss scaling.

    Args:
        float32_layers: layers kept in float32 (default: first, normalization, softmax, heads).
        initial_scale: the loss scale to start from; halved on every step with
            non-finite gradients (that step is skipped).
        growth_interval: double the scale after this many finite steps in a row.
    """
    return MixedPrecision(
        "mixed_float16",
        DEFAULT_FLOAT32_LAYERS if float32_layers is None else float32_layers,
        {"initial_scale": initial_scale, "growth_interval": growth_interval},
    )


def mixed_bfloat16(float32_layers: list[str] | None = None) -> MixedPrecision:
    """bfloat16 compute with float32 variables and islands (bfloat16 needs no loss scaling).

    Args:
        float32_layers: layers kept in float32 (default: first, normalization, softmax, heads).
    """
    return MixedPrecision(
        "mixed_bfloat16", DEFAULT_FLOAT32_LAYERS if float32_layers is None else float32_layers
    )


@kplug.hookimpl
def kplug_register_precision_policies(register: Register) -> None:
    """Register ``mixed_float16`` and ``mixed_bfloat16``."""
    register("mixed_float16", mixed_float16, description="float16 compute, float32 islands, loss scaling")
    register("mixed_bfloat16", mixed_bfloat16, description="bfloat16 compute, float32 islands")
