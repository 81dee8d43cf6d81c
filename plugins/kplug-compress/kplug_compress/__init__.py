"""kplug-compress: export, LoRA, pruning and distillation for kplug runs.

Installed, it is found through the ``kplug`` entry-point group. Each module owns one
feature; the hook implementations here only hand each hook to the modules that use it.
"""

from __future__ import annotations

import kplug

from kplug_compress import export


@kplug.hookimpl
def kplug_add_commands(commands):
    """``kplug export``."""
    export.add_export_command(commands)
