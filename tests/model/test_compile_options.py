"""train.compile reaches Model.compile: explicit settings, the recorded choice for auto, torch's limit."""

from __future__ import annotations

import keras
import pytest
from conftest import blob_config

import kplug
from kplug.config.compile_record import write_record
from kplug.config.load import load_config
from kplug.model.compile_options import compile_options

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(tmp_path / "cache"))


def test_explicit_settings_reach_the_compiled_model(blobs, plugins):
    x, y = blobs
    config = blob_config(x, y)
    spe = 1 if BACKEND == "torch" else 3
    config["train"]["compile"] = {"jit_compile": False, "steps_per_execution": spe}
    result = kplug.fit(config, plugins=plugins)
    assert (result.model.jit_compile, result.model.steps_per_execution) == (False, spe)
    assert result.report["compile"]["steps_per_execution"] == spe


def test_auto_uses_the_record_of_the_same_config_and_backend_only(blobs):
    x, y = blobs
    config = load_config(blob_config(x, y))
    assert compile_options(config) == {}  # nothing recorded: Keras' defaults
    recorded = {"jit_compile": False, "steps_per_execution": 4}
    write_record(config, {"settings": {BACKEND: recorded, "other": {"steps_per_execution": 9}}})
    assert compile_options(config) == recorded
    renamed = load_config({**blob_config(x, y), "name": "renamed", "output": {"dir": "elsewhere"}})
    assert compile_options(renamed) == recorded  # name and output do not change a step's cost
    other = load_config({**blob_config(x, y), "train": {"epochs": 3, "batch_size": 64}})
    assert compile_options(other) == {}


def test_steps_per_execution_on_torch_is_one_with_a_warning(blobs):
    x, y = blobs
    config = blob_config(x, y)
    config["train"]["compile"] = {"steps_per_execution": 8}
    with pytest.warns(UserWarning, match=r"train\.compile\.steps_per_execution = 8 .*torch.*uses 1"):
        assert compile_options(load_config(config), backend="torch")["steps_per_execution"] == 1
    assert compile_options(load_config(config), backend="jax")["steps_per_execution"] == 8


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", r"train\.compile = 'fast': must be 'auto' or a mapping"),
        ({"jit_compile": "yes"}, r"train\.compile\.jit_compile = 'yes'"),
        ({"steps_per_execution": 0}, r"train\.compile\.steps_per_execution = 0: .*greater than 0"),
        (
            {"xla": True},
            r"train\.compile\.xla: unknown field. Allowed fields here: jit_compile, steps_per_execution",
        ),
    ],
)
def test_bad_compile_settings_name_the_field(blobs, value, message):
    x, y = blobs
    config = blob_config(x, y)
    config["train"]["compile"] = value
    with pytest.raises(kplug.ConfigError, match=message):
        load_config(config)
