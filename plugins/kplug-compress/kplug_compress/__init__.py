"""kplug-compress: make a trained kplug run smaller — quantization (``kplug quantize``).

Each feature lives in its own module and exports its hook implementations under
distinct names (``@kplug.hookimpl(specname=...)``), re-exported here.
"""

from __future__ import annotations

from kplug_compress.quantize import QuantizeResult, add_quantize_command, quantize_run

__all__ = ["QuantizeResult", "add_quantize_command", "quantize_run"]
