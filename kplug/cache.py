"""Where kplug keeps what it can rebuild: plugin indexes, ``kplug bench`` records, JAX's compiled
programs and local copies of remote run directories.

This module imports nothing heavy: the command line reads its plugin index through it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$KPLUG_CACHE_DIR``, else ``$XDG_CACHE_HOME/kplug``, else ``~/.cache/kplug``."""
    if os.environ.get("KPLUG_CACHE_DIR"):
        return Path(os.environ["KPLUG_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kplug"
