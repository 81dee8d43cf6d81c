"""kplug keeps everything it can rebuild under one folder: ``$KPLUG_CACHE_DIR``, ``$XDG_CACHE_HOME/kplug`` or ``~/.cache/kplug``."""

from __future__ import annotations

import pytest

from kplug.cache import cache_dir
from kplug.config.compile_record import record_path
from kplug.config.schema import RunConfig
from kplug.train.storage import staging_root

MINIMAL = {
    "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
    "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
}


def test_kplug_cache_dir_comes_first(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"


def test_then_the_xdg_cache_home_then_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("KPLUG_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "kplug"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "kplug"


@pytest.mark.parametrize("variable", ["KPLUG_CACHE_DIR", "XDG_CACHE_HOME"])
def test_bench_records_and_remote_run_copies_live_there(tmp_path, monkeypatch, variable):
    monkeypatch.delenv("KPLUG_CACHE_DIR", raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    root = cache_dir()
    assert root.is_relative_to(tmp_path)
    assert record_path(RunConfig.model_validate(MINIMAL)).parent == root / "bench"
    assert staging_root() == root / "remote-runs"
