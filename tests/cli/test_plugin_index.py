"""The plugin index behind ``kplug plugins`` / ``--help``: read when current, rebuilt when stale."""

from __future__ import annotations

import json
import os

import pytest
from conftest import install_distribution

import kplug.plugin.manager
from kplug.cli import plugin_index
from kplug.cli.main import main

PLUGIN = """
import kplug

@kplug.hookimpl
def kplug_register_callbacks(register):
    def indexed_callback():
        '''A callback the index must list.'''
    register("indexed-callback", indexed_callback)
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(tmp_path / "cache"))
    kplug.plugin.manager._default_plugins.cache_clear()
    yield tmp_path / "cache"
    kplug.plugin.manager._default_plugins.cache_clear()


def row(table: str, name: str) -> list[str]:
    """The words of the table row listing ``name``."""
    (line,) = [line for line in table.splitlines() if f" {name} " in line]
    return line.split()


def stored(cache) -> list:
    return sorted(cache.glob("plugin-index-*.json"))


def test_plugins_reads_the_stored_index_while_it_is_current(cache, capsys):
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    (path,) = stored(cache)
    content = json.loads(path.read_text())
    content["index"]["components"].append(["callback", "only-in-the-index", "nobody", "planted"])
    path.write_text(json.dumps(content))

    assert main(["plugins"]) == 0
    listed = capsys.readouterr().out
    assert "only-in-the-index" in listed and "nobody" in listed  # listed from the index, not reloaded
    assert set(table.splitlines()) < set(listed.splitlines())


def test_a_new_or_edited_plugin_package_rebuilds_the_index(cache, tmp_path, monkeypatch, capsys):
    assert main(["plugins"]) == 0
    assert "indexed-callback" not in capsys.readouterr().out

    site = tmp_path / "site"
    install_distribution(site, "kplug_fake_indexed", PLUGIN, monkeypatch)
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "kplug_fake_indexed")
    kplug.plugin.manager._default_plugins.cache_clear()
    assert main(["plugins"]) == 0
    listed = row(capsys.readouterr().out, "indexed-callback")
    assert listed[:4] == ["callback", "indexed-callback", "kplug-fake-indexed", "1.2.3"]
    assert " ".join(listed[4:]) == "A callback the index must list."

    source = site / "kplug_fake_indexed.py"
    source.write_text(PLUGIN.replace("A callback the index must list.", "Edited."))
    later = os.stat(source).st_mtime_ns + 10**9
    os.utime(source, ns=(later, later))
    monkeypatch.delitem(__import__("sys").modules, "kplug_fake_indexed", raising=False)
    kplug.plugin.manager._default_plugins.cache_clear()
    assert main(["plugins"]) == 0
    assert row(capsys.readouterr().out, "indexed-callback")[4:] == ["Edited."]


def test_an_unwritable_cache_still_lists(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(blocker / "cache"))  # a folder under a file: cannot exist
    assert main(["plugins"]) == 0
    assert "mlp" in capsys.readouterr().out


def test_the_key_names_each_entry_point_and_the_environment(monkeypatch):
    monkeypatch.setenv("KPLUG_DISABLE_PLUGINS", "x")
    key = plugin_index.index_key(no_plugins=False)
    assert key["environment"]["KPLUG_DISABLE_PLUGINS"] == "x"
    assert plugin_index.index_key(no_plugins=True)["entry_points"] == []
    assert key != plugin_index.index_key(no_plugins=True)
