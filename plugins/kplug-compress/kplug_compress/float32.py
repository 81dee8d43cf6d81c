"""Float32 copies of models trained in mixed precision, which quantization and export start from.

Keras refuses to quantize a layer computing in float16 to int8, and a graph exported from a
model computing in bfloat16 mixes float16 and bfloat16 tensors that onnxruntime rejects. A
mixed-precision model keeps its variables in float32, so the same weights computing in
float32 make an exact float32 model: ``float32_copy`` builds it, and the quantized or
exported artifact records the change with ``precision_note``.
"""

from __future__ import annotations

from typing import Any

import keras
from kplug.plugin import iter_layers

HALF = ("float16", "bfloat16")


def half_precision_policies(model: keras.Model) -> list[str]:
    """The dtype policies of the layers of ``model`` that compute in float16 or bfloat16."""
    return sorted({layer.dtype_policy.name for _, layer in iter_layers(model) if layer.compute_dtype in HALF})


def precision_note(model: keras.Model) -> dict[str, str]:
    """What ``report.json``/``export.json`` record: the model's precision and the one written."""
    return {"model": ", ".join(half_precision_policies(model)) or "float32", "written_as": "float32"}


def _float32_config(config: Any) -> Any:
    """``config`` with every dtype policy switched to float32 compute, and every half-precision
    tensor dtype to float32 (a head's input layer takes the dtype of the backbone's output)."""
    if isinstance(config, list):
        return [_float32_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    config = {
        key: "float32" if key == "dtype" and value in HALF else _float32_config(value)
        for key, value in config.items()
    }
    name = config.get("class_name")
    if isinstance(name, str) and name.endswith("DTypePolicy"):  # quantized ones name their source
        inner = config["config"]
        config["config"] = {**inner, ("source_name" if "source_name" in inner else "name"): "float32"}
    return config


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` with every layer computing in float32 and the same weights (``model`` itself
    when no layer computes in half precision)."""
    if not half_precision_policies(model):
        return model
    copy = model.__class__.from_config(_float32_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy
