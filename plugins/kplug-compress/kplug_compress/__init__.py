"""kplug-compress: quantization, export, LoRA, pruning and distillation for kplug runs.

Installed, it is found through the ``kplug`` entry-point group. Each module owns one
feature; the hook implementations here only hand each hook to the modules that use it
(quantization exports its own under ``@kplug.hookimpl(specname=...)``).
"""

from __future__ import annotations

import kplug

from kplug_compress import distill, export, lora, pruning


@kplug.hookimpl
def kplug_register_callbacks(register):
    """``lora`` and ``prune`` (see ``kplug_compress.lora`` and ``kplug_compress.pruning``)."""
    register("lora", lora.LoraAdapters, description="LoRA adapters on Dense/EinsumDense layers")
    register("prune", pruning.MagnitudePruning, description="magnitude pruning to a target sparsity")


@kplug.hookimpl
def kplug_add_commands(commands):
    """``kplug export`` and ``kplug distill``."""
    export.add_export_command(commands)
    distill.add_distill_command(commands)


@kplug.hookimpl
def kplug_configure(config):
    """Check a distillation run's ``distill`` section and teacher before anything is built."""
    distill.configure(config)


@kplug.hookimpl
def kplug_training_model(run, model):
    """Train a run with a ``distill`` section through a ``Distiller`` holding the teacher."""
    return distill.training_model(run, model)


@kplug.hookimpl
def kplug_on_fit_start(run, model):
    """Add LoRA adapters before the first stage."""
    lora.on_fit_start(run, model)


@kplug.hookimpl
def kplug_on_stage_start(run, model, stage):
    """Keep what LoRA does not train frozen in every stage; start each stage's pruning schedule."""
    lora.on_stage_start(run, model, stage)
    pruning.on_stage_start(run, model, stage)


@kplug.hookimpl
def kplug_on_fit_end(run, result):
    """Write the merged LoRA model; report LoRA, pruning and distillation."""
    lora.on_fit_end(run, result)
    pruning.on_fit_end(run, result)
    distill.on_fit_end(run, result)


from kplug_compress.quantize import QuantizeResult, add_quantize_command, quantize_run  # noqa: E402

__all__ = ["QuantizeResult", "add_quantize_command", "quantize_run"]
