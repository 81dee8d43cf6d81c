"""The Keras backend this process will use, found as Keras finds it but without importing Keras."""

from __future__ import annotations

import json
import os
from pathlib import Path


def keras_backend_name() -> str:
    """``KERAS_BACKEND``, else the ``backend`` of ``$KERAS_HOME/keras.json`` (``~/.keras``), else tensorflow.

    The order of ``keras/src/backend/config.py``; used where importing Keras would cost seconds.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    if os.environ.get("KERAS_HOME"):
        folder = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        folder = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        return str(json.loads((Path(folder) / "keras.json").read_text()).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"
