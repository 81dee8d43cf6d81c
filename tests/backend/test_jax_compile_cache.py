"""kplug.backend.jax_compile_cache: on jax, a second run reuses the programs the first compiled.

JAX decides once per process whether it uses its cache, so each run is a fresh interpreter that
counts JAX's own cache-hit events.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kplug.backend.jax_compile_cache import ENVIRONMENT

# each case trains in two fresh interpreters (18 s): slow
pytestmark = [pytest.mark.backends("jax"), pytest.mark.slow]

# Trains a small MLP (on-disk cache untouched by the test session's) and prints JAX's cache hits
# and the directory kplug chose.
RUNNER = """
import json, sys
import jax.monitoring
import numpy as np
hits = []
jax.monitoring.register_event_listener(
    lambda name, **kwargs: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None
)
import kplug
from kplug.backend.jax_compile_cache import use_jax_compilation_cache
rng = np.random.default_rng(0)
x = rng.normal(size=(96, 8)).astype("float32")
y = (x[:, 0] > 0).astype("int64")
config = {
    "name": "cached",
    "seed": 1,
    "data": {"source": "arrays", "options": {"x": x, "y": y}},
    "model": {"backbone": {"name": "mlp", "options": {"units": [64, 64]}}, "heads": [{"name": "classification"}]},
    "train": {"epochs": 1, "batch_size": 32, "verbose": 0},
    "output": {"dir": sys.argv[1], "overwrite": True},
}
kplug.fit(config, plugins=kplug.load_plugins(entry_points=False))
folder = use_jax_compilation_cache()
print(json.dumps({"hits": len(hits), "folder": None if folder is None else str(folder)}))
"""


def train(tmp_path: Path, **environment: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "KPLUG_CACHE_DIR": str(tmp_path / "cache"), **environment}
    for name in ("JAX_COMPILATION_CACHE_DIR", ENVIRONMENT):
        if name not in environment:
            env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_run_reuses_the_programs_the_first_compiled(tmp_path):
    first = train(tmp_path)
    folder = tmp_path / "cache" / "jax-compilation"
    assert first == {"hits": 0, "folder": str(folder)}
    assert list(folder.iterdir()), "the first run stored no compiled program"
    second = train(tmp_path)
    assert second["hits"] >= 1, second


def test_off_with_the_variable_and_a_users_own_directory_wins(tmp_path):
    assert train(tmp_path, **{ENVIRONMENT: "0"}) == {"hits": 0, "folder": None}
    assert not (tmp_path / "cache" / "jax-compilation").exists()
    own = tmp_path / "own"
    shown = train(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own))
    assert shown["folder"] == str(own) and not (tmp_path / "cache" / "jax-compilation").exists()
