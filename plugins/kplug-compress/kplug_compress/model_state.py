"""Training state a plugin keeps with the model, so kplug checkpoints carry it and a resume gets it back.

A kplug checkpoint is the training model written with ``model.save`` and restored with
``model.load_weights``. Keras saves and loads every saveable attribute of a model: the
layers first, private attributes last (``_walk_saveable`` in Keras' ``saving_lib``). A
``ModelState`` attached to a model under a private name is therefore written into every
checkpoint and read back *after* the layers' own weights, with nothing to change in kplug's
checkpointing. A model that does not carry the state (``keras.saving.load_model`` of the
file, say) skips the extra entry.

The state is not a layer of the model: it is attached with ``object.__setattr__``, which
Keras (and torch) do not track, so it adds no weights and leaves the model's config alone.
"""

from __future__ import annotations

from typing import ClassVar, Self

import keras


class ModelState(keras.layers.Layer):
    """Plugin state saved and loaded with a model; subclasses implement ``save_own_variables``
    and ``load_own_variables`` (the store maps names to arrays; a state missing from a file
    leaves the store without its keys)."""

    attribute: ClassVar[str]

    @classmethod
    def of(cls, model: keras.Model) -> Self | None:
        """The state attached to ``model``, or ``None``."""
        return model.__dict__.get(cls.attribute)

    @classmethod
    def detach(cls, model: keras.Model) -> None:
        """Stop saving the state with ``model``."""
        model.__dict__.pop(cls.attribute, None)

    def attach(self, model: keras.Model) -> Self:
        """Save and load this state with ``model`` from now on (replacing an earlier one)."""
        object.__setattr__(model, self.attribute, self)
        return self
