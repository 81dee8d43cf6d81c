"""keras-hub encoders whose feed-forward activation is a saved option, and a pooling layer.

keras-hub's ``BertBackbone`` always builds its encoder layers with the tanh-approximate GELU,
while BERT checkpoints from Hugging Face (Google's BERT, all-MiniLM-L6-v2, ...) were trained
with the exact erf GELU (``hidden_act: gelu``): the loaded model then differs from the
original by up to ~3.5e-3 in its embeddings. These subclasses take the activation as a
constructor argument, set it on every encoder layer after keras-hub has built the network,
and save it in their config, so a model reloaded from a ``.keras`` file keeps it too.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_hub

ACTIVATION_FUNCTIONS = {
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
    "silu": keras.activations.silu,
}


def set_encoder_activation(backbone: keras.Model, activation: str) -> int:
    """Give every transformer encoder layer of ``backbone`` the feed-forward ``activation``.

    Returns:
        How many encoder layers were changed.
    """
    function = ACTIVATION_FUNCTIONS[activation]
    changed = 0
    for layer in backbone.transformer_layers:
        # the intermediate Dense applies the activation at call time, so changing it after
        # the functional graph is built changes what the model computes
        layer.activation = function
        layer._feedforward_intermediate_dense.activation = function
        changed += 1
    return changed


class _ActivationOption:
    """Mixin: an ``activation`` constructor argument applied to the encoder layers and saved."""

    def _apply_activation(self, activation: str | None) -> None:
        if activation is not None and activation not in ACTIVATION_FUNCTIONS:
            raise ValueError(
                f"activation = {activation!r}; allowed: {', '.join(ACTIVATION_FUNCTIONS)} or None "
                f"(keras-hub's own)."
            )
        self.activation = activation
        if activation is not None:
            set_encoder_activation(self, activation)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation}


@keras.saving.register_keras_serializable(package="kplug_text")
class BertEncoder(_ActivationOption, keras_hub.models.BertBackbone):
    """keras-hub's ``BertBackbone`` with a chosen feed-forward activation.

    Args:
        activation: ``"gelu"`` (exact erf), ``"gelu_approximate"`` (tanh, keras-hub's default),
            ``"relu"``, ``"silu"``, or ``None`` for keras-hub's default.
        **kwargs: ``BertBackbone`` arguments.
    """

    def __init__(self, *, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._apply_activation(activation)


@keras.saving.register_keras_serializable(package="kplug_text")
class DistilBertEncoder(_ActivationOption, keras_hub.models.DistilBertBackbone):
    """keras-hub's ``DistilBertBackbone`` with a chosen feed-forward activation (see ``BertEncoder``)."""

    def __init__(self, *, activation: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._apply_activation(activation)


POOLING_MODES = ("cls", "mean", "max")


@keras.saving.register_keras_serializable(package="kplug_text")
class SequencePooling(keras.layers.Layer):
    """Token features ``[N, L, H]`` and a padding mask ``[N, L]`` to one vector per sequence ``[N, H]``.

    Args:
        mode: ``"cls"`` (the first token), ``"mean"`` (the mean over real tokens, as
            sentence-transformers computes it) or ``"max"`` (the maximum over real tokens).
    """

    def __init__(self, mode: str = "mean", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(f"mode = {mode!r}; allowed: {', '.join(POOLING_MODES)}.")
        self.mode = mode

    def call(self, sequence, padding_mask):
        if self.mode == "cls":
            return sequence[:, 0, :]
        mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, sequence.dtype), -1)
        if self.mode == "max":
            lowest = keras.ops.cast(-1e9, sequence.dtype)
            return keras.ops.max(keras.ops.where(mask > 0, sequence, lowest), axis=1)
        total = keras.ops.sum(sequence * mask, axis=1)
        count = keras.ops.maximum(keras.ops.sum(mask, axis=1), keras.ops.cast(1e-9, sequence.dtype))
        return total / count

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mode": self.mode}
