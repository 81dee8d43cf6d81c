"""The two halves of a kplug model when its backbone is frozen: a feature extractor and the heads.

A stage that trains only the heads, with nothing random in front of them, can run the
backbone once per split (``feature_extractor``) and train ``HeadsOnFeatures``, a model
made of the run model's own head layers on a features input: its variables are the run
model's, so training it trains the run model's heads.
"""

from __future__ import annotations

from typing import Any

import keras

from kplug.model.assembly import model_inputs
from kplug.model.paths import iter_layers


def random_layers(model: keras.Model, prefix: str) -> list[str]:
    """Paths under ``prefix`` (e.g. ``backbone``) of layers that draw random numbers when training.

    A layer counts when it owns a ``keras.random.SeedGenerator`` (Dropout with a rate above 0,
    GaussianNoise, random augmentation layers, ...); a Dropout of rate 0 has none.
    """
    return [
        path
        for path, layer in iter_layers(model)
        if (path == prefix or path.startswith(prefix + "/"))
        and any(isinstance(value, keras.random.SeedGenerator) for value in vars(layer).values())
    ]


def trainable_layers(model: keras.Model, prefix: str) -> list[str]:
    """Paths under ``prefix`` of layers with weights that train or update state in training mode.

    A frozen BatchNormalization under ``batchnorm: train`` is one: it normalises with batch
    statistics and updates its moving averages.
    """
    return [
        path
        for path, layer in iter_layers(model)
        if path.startswith(prefix + "/") and layer.trainable and layer.weights and not _has_children(layer)
    ]


def _has_children(layer: keras.layers.Layer) -> bool:
    return bool(list(layer._flatten_layers(include_self=False, recursive=False)))


def feature_extractor(model: keras.Model, spec: Any) -> keras.Model:
    """A model from the run model's inputs (``spec`` as for ``build_model``) to its backbone's output."""
    inputs = model_inputs(spec)
    return keras.Model(inputs, model.get_layer("backbone")(inputs), name="feature_extractor")


class HeadsOnFeatures(keras.Model):
    """The run model's heads on a features input; saving it saves the run model.

    Checkpoints and ``best.keras`` written while it trains hold the whole run model
    (``full_model``), so they are the files an uncached stage writes. Its random-generator
    states are the run model's too: a backbone whose features are cached has none.

    Args:
        full_model: the run model (inputs -> backbone -> heads).
        head_ids: the heads, in the run model's output order.
        feature_shape: one example's backbone output shape.
        feature_dtype: the backbone output's dtype.
    """

    def __init__(
        self,
        full_model: keras.Model,
        head_ids: list[str],
        feature_shape: tuple[int, ...],
        feature_dtype: str,
    ) -> None:
        features = keras.Input(feature_shape, dtype=feature_dtype, name="features")
        outputs = {head_id: full_model.get_layer(head_id)(features) for head_id in head_ids}
        single = len(outputs) == 1
        super().__init__(
            features, next(iter(outputs.values())) if single else outputs, name="heads_on_features"
        )
        self.full_model = full_model

    def save(self, filepath: Any, *args: Any, **kwargs: Any) -> None:
        """Save the run model (weights, optimizer state), not this stand-in."""
        self.full_model.save(filepath, *args, **kwargs)
