"""Python warnings raised while training are counted in report.json, not printed per step."""

from __future__ import annotations

import json
import warnings

import keras
from conftest import blob_config

import kplug


class WarnEachEpoch(keras.callbacks.Callback):
    """Raises the same warning at the end of every epoch, as a library might per step."""

    def on_epoch_end(self, epoch, logs=None):
        warnings.warn("the widget is deprecated", FutureWarning, stacklevel=1)


class Plugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("warn-each-epoch", WarnEachEpoch)


def test_warnings_during_training_land_in_the_report(blobs, capsys):
    x, y = blobs
    config = blob_config(x, y, callbacks=[{"name": "warn-each-epoch"}])
    result = kplug.fit(config, plugins=kplug.load_plugins([Plugin()], entry_points=False))

    assert "the widget is deprecated" not in capsys.readouterr().err
    report = json.loads((result.run_dir / "report.json").read_text())
    caught = [w for w in report["warnings"] if w["message"] == "the widget is deprecated"]
    assert len(caught) == 1, report["warnings"]
    assert caught[0]["category"] == "FutureWarning" and caught[0]["count"] == config["train"]["epochs"]
    assert caught[0]["where"].rsplit(":", 1)[0].endswith("test_run_warnings.py")


def test_an_error_filter_still_raises(blobs):
    x, y = blobs
    config = blob_config(x, y, callbacks=[{"name": "warn-each-epoch"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            kplug.fit(config, plugins=kplug.load_plugins([Plugin()], entry_points=False))
        except FutureWarning as error:
            assert "the widget is deprecated" in str(error)
        else:
            raise AssertionError("an 'error' filter must still turn the warning into an exception")
