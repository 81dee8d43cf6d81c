"""Lifecycle hooks get a read-only ``RunContext`` (not the Trainer), called in one documented order."""

from __future__ import annotations

import pytest
from conftest import blob_config

import kplug
from kplug.plugin import RunContext


def test_lifecycle_hooks_receive_a_read_only_run_context(blobs, tmp_path):
    x, y = blobs
    seen = {}

    class Reader:
        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_start(run, model):
            seen["type"] = type(run)
            seen["labels"] = run.label_maps["label"].names
            seen["model"] = run.model is model
            seen["train_rows"] = len(run.split_data("train")[0])
            seen["callback"] = run.callback("early-stopping")
            with pytest.raises(AttributeError, match="read-only"):
                run.model = None

        @staticmethod
        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            seen["run_dir"] = run.run_dir
            seen["stages"] = len(run.stages)

    config = blob_config(x, y, output={"dir": str(tmp_path / "run")})
    result = kplug.fit(config, plugins=kplug.load_plugins([Reader()], entry_points=False))
    assert seen["type"] is RunContext
    assert seen["labels"] == ["0", "1", "2"]
    assert seen["model"] is True
    assert seen["train_rows"] == 192  # 240 rows, 20% held out for validation
    assert seen["callback"] is None  # the config names no early-stopping callback
    assert seen["run_dir"] == result.run_dir
    assert seen["stages"] == 1


def test_every_lifecycle_hook_runs_in_load_order(blobs, tmp_path):
    """``kplug_configure`` and the ``kplug_on_*`` hooks share one order: first loaded, first called."""
    x, y = blobs
    calls = []

    def recorder(name):
        class Recorder:
            @staticmethod
            @kplug.hookimpl
            def kplug_configure(config):
                calls.append(("configure", name))

            @staticmethod
            @kplug.hookimpl
            def kplug_on_fit_start(run, model):
                calls.append(("start", name))

        return Recorder()

    plugins = kplug.load_plugins([recorder("a"), recorder("b")], entry_points=False)
    config = blob_config(x, y, output={"dir": str(tmp_path / "run")}, train={"epochs": 1, "verbose": 0})
    kplug.fit(config, plugins=plugins)
    assert calls == [("configure", "a"), ("configure", "b"), ("start", "a"), ("start", "b")]
