"""kplug-compress: export, LoRA, pruning and distillation for kplug runs.

Installed, it is found through the ``kplug`` entry-point group. Each module owns one
feature; the hook implementations here only hand each hook to the modules that use it.
"""

from __future__ import annotations

import kplug

from kplug_compress import export, lora


@kplug.hookimpl
def kplug_register_callbacks(register):
    """``lora`` (adapters, see ``kplug_compress.lora``)."""
    register("lora", lora.LoraAdapters, description="LoRA adapters on Dense/EinsumDense layers")


@kplug.hookimpl
def kplug_add_commands(commands):
    """``kplug export``."""
    export.add_export_command(commands)


@kplug.hookimpl
def kplug_on_fit_start(trainer, model):
    """Add LoRA adapters before the first stage."""
    lora.on_fit_start(trainer, model)


@kplug.hookimpl
def kplug_on_stage_start(trainer, model, stage):
    """Keep what LoRA does not train frozen in every stage."""
    lora.on_stage_start(trainer, model, stage)


@kplug.hookimpl
def kplug_on_fit_end(trainer, result):
    """Write the merged LoRA model and report."""
    lora.on_fit_end(trainer, result)
