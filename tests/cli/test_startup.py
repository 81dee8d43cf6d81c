"""A fast, quiet command line: listing and help load no backend library, TensorFlow logs nothing.

Each case runs ``kplug`` in a fresh interpreter on the active backend (``KERAS_BACKEND``) with
the installed plugin packages and its own plugin index (``KPLUG_CACHE_DIR``), and reports which
heavy modules the command imported. The first call builds the index (it loads the plugins; a
module fixture builds one that most cases copy); the calls after it must import neither Keras
nor any backend library (benchmarks/cli_startup.py measures the time).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import yaml

BACKEND = keras.backend.backend()
BACKEND_MODULES = ("tensorflow", "torch", "jax")
HEAVY = ("keras", "keras_hub", *BACKEND_MODULES)

# Runs `kplug ARGS...` in-process and writes the heavy modules it imported to REPORT.
RUNNER = f"""
import json, sys
from kplug.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as report:
    json.dump({{"code": code, "imported": sorted(m for m in {HEAVY!r} if m in sys.modules)}}, report)
"""

# TensorFlow / absl / CUDA C++ log lines: "W0000 00:00:...", "E0000 ... failed call to cuInit", absl's banner.
LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuInit|cuda_|oneDNN", re.MULTILINE)


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``kplug`` call whose plugin index lives in ``tmp_path / "cache"``."""
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "KPLUG_CACHE_DIR": str(tmp_path / "cache"), **extra}
    for name in ("KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(name, None)
    return env


def run_kplug(tmp_path: Path, *args: str) -> dict:
    report = tmp_path / "imported.json"
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(report), *args],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {**json.loads(report.read_text()), "stdout": done.stdout, "stderr": done.stderr}


@pytest.fixture(scope="module")
def first_help(tmp_path_factory) -> tuple[Path, dict]:
    """``kplug --help`` in a fresh cache directory (it builds the plugin index): the directory and the call.

    Building the index loads every plugin (5-10 s); the cases of the cached path copy this one.
    """
    folder = tmp_path_factory.mktemp("first-help")
    return folder, run_kplug(folder, "--help")


@pytest.fixture
def built_index(tmp_path, first_help) -> Path:
    """``tmp_path`` with a copy of the plugin index ``first_help`` built."""
    shutil.copytree(first_help[0] / "cache", tmp_path / "cache")
    return tmp_path


# one fresh interpreter a case on the index built once: listing, help and a usage error in the quick
# set, the rest slow
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["plugins"], id="plugins"),
        pytest.param(["--help"], id="help"),
        pytest.param(["--version"], id="version", marks=pytest.mark.slow),
        pytest.param(["trian"], id="unknown-command"),
        pytest.param(["tune", "run.yaml"], id="missing-option", marks=pytest.mark.slow),
        pytest.param(["--no-plugins", "plugins"], id="no-plugins", marks=pytest.mark.slow),
    ],
)
def test_listing_and_help_import_no_backend_library(built_index, args):
    # built-ins only: another plugin index, which its first call builds and the second reads back
    first = run_kplug(built_index, *args) if "--no-plugins" in args else None
    again = run_kplug(built_index, *args)
    if first is not None:
        assert (again["code"], again["stdout"], again["stderr"]) == (
            first["code"],
            first["stdout"],
            first["stderr"],
        )
    others = [m for m in BACKEND_MODULES if m != BACKEND]
    assert not set(again["imported"]) & set(others), f"kplug {' '.join(args)} imported {again['imported']}"
    assert again["imported"] == [], f"kplug {' '.join(args)} imported {again['imported']} (slow start-up)"


def test_help_from_the_index_is_the_help_that_built_it(built_index, first_help):
    again = run_kplug(built_index, "--help")
    assert again["code"] == 0 and "usage: kplug" in again["stdout"]
    assert (again["code"], again["stdout"], again["stderr"]) == (
        first_help[1]["code"],
        first_help[1]["stdout"],
        first_help[1]["stderr"],
    )


def test_doctor_imports_no_keras_nor_another_backend(built_index):
    facts = run_kplug(built_index, "doctor")
    assert facts["code"] == 0, facts["stderr"]
    shown = json.loads(facts["stdout"])
    assert shown["backend"] == BACKEND and shown["devices"] and shown["components"] > 50
    assert set(facts["imported"]) <= {BACKEND}, f"kplug doctor imported {facts['imported']} (slow start-up)"


def test_plugins_lists_the_installed_components_from_the_index(tmp_path):
    listed = run_kplug(tmp_path, "plugins")
    assert listed["code"] == 0 and listed["stderr"] == ""
    table = listed["stdout"]
    assert "backbone      mlp" in table and "(built-in)" in table
    assert "kplug-vision" in table and "kplug-compress" in table  # installed plugin packages
    assert list((tmp_path / "cache").glob("plugin-index-*.json"))
    assert run_kplug(tmp_path, "plugins")["stdout"] == table


# backend-independent (the parsers and the plugin index): quick on torch, the lightest pass
@pytest.mark.slow("jax", "tensorflow")
def test_help_lists_the_commands_plugins_add_and_their_usage_still_parses(built_index):
    shown = run_kplug(built_index, "--help")
    assert shown["code"] == 0 and "export" in shown["stdout"] and "quantize" in shown["stdout"]
    usage = run_kplug(built_index, "export", "--help")  # a plugin's own command: parsed by its own parser
    assert usage["code"] == 0 and "usage: kplug export" in usage["stdout"]


@pytest.mark.slow("jax", "tensorflow")  # backend-independent: quick on torch only
def test_version(built_index):
    from importlib.metadata import version

    shown = run_kplug(built_index, "--version")
    assert (shown["code"], shown["stdout"]) == (0, f"kplug {version('kplug')}\n")


@pytest.mark.slow("jax", "tensorflow")  # backend-independent: quick on torch only
def test_module_runs_as_the_command(built_index):
    done = subprocess.run(
        [sys.executable, "-m", "kplug.cli.main", "--version"],
        env=environment(built_index),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.startswith("kplug ")


def tiny_run(tmp_path: Path, mnist_options: dict) -> Path:
    config = {
        "name": "tiny",
        "seed": 0,
        "data": {"source": "idx", "options": dict(mnist_options), "limit": 120, "split": {"test": 0.25}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 1, "verbose": 0},
        "output": {"dir": str(tmp_path / "runs" / "tiny"), "overwrite": True},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# on the active backend (keras-hub imports TensorFlow on every backend): quick on tensorflow, whose
# own logs the --debug half checks; slow (CI) on jax and torch
@pytest.mark.slow("jax", "torch")
def test_train_prints_no_tensorflow_log_lines(tmp_path, mnist_options):
    config = tiny_run(tmp_path, mnist_options)
    command = [sys.executable, "-m", "kplug.cli.main", "train", str(config)]
    env = environment(tmp_path, KERAS_BACKEND=BACKEND)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not LOG_LINE.search(done.stderr), done.stderr
    assert "Run directory:" in done.stdout
    if BACKEND == "tensorflow":  # --debug shows them, as before
        debug = subprocess.run(command + ["--debug"], env=env, capture_output=True, text=True, timeout=600)
        assert debug.returncode == 0 and LOG_LINE.search(debug.stderr), debug.stderr
