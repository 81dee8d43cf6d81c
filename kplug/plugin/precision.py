"""``Precision``: what a precision component gives the trainer, and the per-layer dtype report.

A precision factory returns either a Keras dtype policy (``"mixed_bfloat16"``, a
``keras.DTypePolicy``) or a ``Precision``. The trainer sets ``policy`` globally while
the model is built, calls ``configure_model`` once the model exists (to keep some
layers in float32, say) and passes every stage's optimizer through
``wrap_optimizer`` (to add loss scaling, say).
"""

from __future__ import annotations

from typing import Any

import keras

from kplug.model.paths import iter_layers


class Precision:
    """A precision policy with hooks on the built model and on each stage's optimizer.

    Subclass it and override ``configure_model`` / ``wrap_optimizer``; the defaults
    change nothing.

    Example::

        class HalfWithFloat32Heads(kplug.Precision):
            def __init__(self):
                super().__init__("mixed_float16")

            def configure_model(self, model):
                for layer in model.layers:
                    if layer.name.startswith("heads"):
                        layer.dtype_policy = "float32"

    Args:
        policy: the Keras dtype policy set while the model is built.
    """

    def __init__(self, policy: str | keras.DTypePolicy = "float32") -> None:
        self.policy = policy

    @property
    def name(self) -> str:
        """The policy's name, as recorded in ``report.json``."""
        return str(getattr(self.policy, "name", self.policy))

    def configure_model(self, model: keras.Model) -> None:
        """Adjust the built model (before any checkpoint is loaded or stage compiled)."""

    def wrap_optimizer(self, optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
        """Return the optimizer a stage compiles with (``optimizer`` itself by default)."""
        return optimizer

    def describe(self) -> dict[str, Any]:
        """Settings for ``report.json`` beyond the policy name."""
        return {}


def as_precision(value: Any) -> Precision:
    """A factory's return value as a ``Precision``: a policy name or object is wrapped."""
    return value if isinstance(value, Precision) else Precision(value)


def layer_dtypes(model: keras.Model) -> dict[str, dict[str, Any]]:
    """Per layer path, the dtype it computes in and the dtypes of its own variables.

    Example: ``{"backbone/conv1": {"compute": "float32", "variables": ["float32"]}, ...}``.
    """
    table: dict[str, dict[str, Any]] = {}
    for path, layer in iter_layers(model):
        nested = {id(v) for child in layer._flatten_layers(include_self=False) for v in child.weights}
        own = sorted({str(v.dtype) for v in layer.weights if id(v) not in nested})
        table[path] = {
            "class": type(layer).__name__,
            "policy": layer.dtype_policy.name,
            "compute": layer.compute_dtype,
            "variables": own,
        }
    return table
