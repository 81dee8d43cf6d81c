"""Loading plugins (registering every component) imports no heavy library the backend does not use.

Each case runs in a fresh interpreter: ``import keras`` first (on the torch backend Keras itself
loads tensorflow through torch._dynamo, which is not kplug's doing), then ``kplug.load_plugins()``
with the installed plugin packages, and reports which of keras_hub, tensorflow and torch the
loading added. A factory imports those when the component is built, never at registration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import pytest

HEAVY = ("keras_hub", "tensorflow", "torch")
BACKEND = keras.backend.backend()

PROBE = f"""
import json, sys
import keras
import pytest
before = {{m for m in {HEAVY!r} if m in sys.modules}}
import kplug
plugins = kplug.load_plugins()
added = sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)
print(json.dumps({{"added": added, "providers": sorted(plugins.providers), "failures": [f.name for f in plugins.failures]}}))
"""


def loaded_by_plugins(disabled: str = "") -> dict:
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "KPLUG_DISABLE_PLUGINS": disabled}
    env.pop("KPLUG_LOAD_PLUGINS", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # the quick set has the case below: every installed plugin, these included
def test_core_and_plugin_packages_register_without_heavy_imports():
    """Built-ins and kplug-compress, -distribute, -precision, -mlflow, -example, -vision, the tutorial."""
    found = loaded_by_plugins(disabled="text")
    assert {"compress", "distribute", "precision", "mlflow", "example"} <= set(found["providers"])
    assert found["failures"] == []
    # the backend's own library is loaded by keras already, so it never shows up as added
    assert found["added"] == []


def test_every_installed_plugin_registers_without_heavy_imports():
    found = loaded_by_plugins()
    assert {"text", "compress", "distribute", "precision", "mlflow", "example"} <= set(found["providers"])
    assert found["failures"] == []
    assert found["added"] == []
