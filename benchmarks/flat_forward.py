"""Prototype (not kplug's default): train a nested kplug model through one flat graph, keeping the nested model.

A kplug model is ``inputs -> backbone (a Model) -> heads (Sequentials)``: its layer
paths, checkpoints, init maps and freezing all rely on that nesting. On torch's eager
step every sub-model call costs a full ``Layer.__call__`` (input conversion, tree
flattening, autocast and name scopes) and a graph walk of its own on top of its layers'
calls. ``flat_forward`` builds a flat functional graph over the *same* layer objects
(so the same variables) and, while open, makes the nested model's ``call`` run that
graph. The model object that is compiled, fitted, checkpointed and saved stays the
nested one; only the Python calls per step change, not the arithmetic.

Measured on torch (``benchmarks/notes.md``, section 10's ``kplug_flat``): 5-6% of the MLP's
steady epoch, nothing on the CNN, under the 8% that would justify it in kplug's trainer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras


def _graph(layer: Any) -> Any:
    """The functional graph a layer runs (a functional Model or a built Sequential's), or ``None``."""
    if isinstance(layer, keras.Sequential):
        return getattr(layer, "_functional", None)
    if isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth"):
        return layer
    return None


def _call_flat(layer: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``layer`` on symbolic inputs, replaying a functional sub-model's graph instead of calling it."""
    graph = _graph(layer)
    # a sub-model fed a mask or several positional tensors keeps its own call
    if graph is None or len(args) != 1 or kwargs.get("mask") is not None:
        return layer(*args, **kwargs)
    outputs = graph._run_through_graph(
        graph._standardize_inputs(args[0]), operation_fn=lambda op: lambda *a, **k: _call_flat(op, *a, **k)
    )
    return outputs[0] if isinstance(outputs, list | tuple) and len(outputs) == 1 else outputs


def _leaf_layers(layer: Any) -> list[Any]:
    graph = _graph(layer)
    if graph is None:
        return [layer]
    return [leaf for child in graph.layers for leaf in _leaf_layers(child)]


def flat_graph(model: keras.Model) -> keras.Model | None:
    """A functional model over ``model``'s innermost layers, in order, or ``None`` when it would not be flatter.

    The graph shares every layer (and so every variable) with ``model``; it is never
    saved or trained itself. Layers whose names repeat across sub-models (a backbone's
    and a head's ``flatten``) carry a unique name only while the graph is built, since
    layer paths (``kplug.model.paths``) are built from the real names.
    """
    if _graph(model) is not model or not any(_graph(layer) is not None for layer in model.layers):
        return None
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype, name=t.name), model._inputs_struct
    )
    renamed: dict[Any, str] = {}
    seen: set[str] = set()
    try:
        outputs = _call_flat(model, inputs)
        for layer in _leaf_layers(model):
            if layer.name in seen:
                renamed[layer] = layer.name
                layer.name = f"{layer.name}__flat{len(renamed)}"
            seen.add(layer.name)
        graph = keras.Model(inputs, outputs, name=f"{model.name}_flat")
    except (ValueError, TypeError, KeyError):  # a graph Keras cannot replay flat: keep the nested call
        return None
    finally:
        for layer, name in renamed.items():
            layer.name = name
    if [id(v) for v in graph.weights] != [id(v) for v in model.weights]:
        return None  # not the same variables in the same order: never train through it
    return graph


@contextlib.contextmanager
def flat_forward(model: keras.Model) -> Iterator[None]:
    """While open, ``model``'s forward pass runs its flat graph (``flat_graph``); outside, its own.

    Example::

        with flat_forward(model):
            model.fit(x, y)  # the same updates as without, fewer Python calls per step
    """
    graph = flat_graph(model)
    if graph is None:
        yield
        return
    nested_call = model.call

    def call(inputs: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        if mask is not None or kwargs:
            return nested_call(inputs, training=training, mask=mask, **kwargs)
        return graph.call(inputs, training=training)

    model.call = call
    try:
        yield
    finally:
        del model.call  # back to the class's call
