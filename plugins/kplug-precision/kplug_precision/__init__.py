"""kplug-precision: mixed_float16 and mixed_bfloat16 with float32 islands and dynamic loss scaling.

Installed, it is found through the ``kplug`` entry-point group; a config then says
``precision: {policy: mixed_float16}`` (options in ``precision.options``).
"""

from __future__ import annotations

from kplug_precision.policies import (
    DEFAULT_FLOAT32_LAYERS,
    MixedPrecision,
    kplug_register_precision_policies,
    mixed_bfloat16,
    mixed_float16,
)

__all__ = [
    "DEFAULT_FLOAT32_LAYERS",
    "MixedPrecision",
    "kplug_register_precision_policies",
    "mixed_bfloat16",
    "mixed_float16",
]
