"""Plugin isolation: a broken installed plugin is reported by name and disabled, runs that do not
need it go on, `--no-plugins` and KPLUG_DISABLE_PLUGINS leave it out.

(The runs that do need a broken plugin are cases of the bad-input corpus: tests/bad_inputs/plugin/.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import install_distribution, mnist_data

import kplug.plugin.manager
from kplug.cli.main import main

BROKEN_IMPORT = "raise ImportError('needs libfoo')\n"

# Its component hook raises; its lifecycle hook would leave a marker if it still ran.
BROKEN_HOOK = """
    from pathlib import Path

    import kplug

    @kplug.hookimpl
    def kplug_register_heads(register):
        raise RuntimeError("head table is corrupt")

    @kplug.hookimpl
    def kplug_on_fit_start(run, model):
        Path("broken-plugin-ran").write_text("the disabled plugin's hook ran")
"""

GOOD = """
    import kplug
    from kplug.builtin.backbones import mlp

    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("good-mlp", mlp)
"""

COMMAND_RAISES = """
    import kplug

    @kplug.hookimpl
    def kplug_add_commands(commands):
        raise RuntimeError("cannot add my command")
"""

# Adds `kplug greet`, then a second `kplug train`; and a backbone, which must stay usable.
COMMAND_CLASHES = """
    import kplug
    from kplug.builtin.backbones import mlp

    @kplug.hookimpl
    def kplug_add_commands(commands):
        commands.add_parser("greet", help="greet").set_defaults(handler=lambda args: print("hi") or 0)
        commands.add_parser("train")

    @kplug.hookimpl
    def kplug_register_backbones(register):
        register("clash-mlp", mlp)
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install throwaway plugins; only they (and the built-ins) load, reloaded per test."""
    site = tmp_path / "site"
    names: list[str] = []

    def add(name: str, source: str) -> None:
        install_distribution(site, name, source, monkeypatch)
        names.append(name)
        monkeypatch.setenv("KPLUG_LOAD_PLUGINS", ",".join(names))
        kplug.plugin.manager._default_plugins.cache_clear()

    yield add
    kplug.plugin.manager._default_plugins.cache_clear()


def write_config(path: Path, backbone: str = "mlp") -> Path:
    config = {
        "name": "isolation",
        "data": mnist_data(limit=120),
        "model": {
            "backbone": {"name": backbone, "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 1, "verbose": 0},
        "output": {"dir": "run"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_run_that_does_not_need_the_broken_plugins_goes_on(installed, tmp_path, capsys):
    installed("kplug_iso_import", BROKEN_IMPORT)
    installed("kplug_iso_hook", BROKEN_HOOK)
    installed("kplug_iso_good", GOOD)
    write_config(tmp_path / "run.yaml", backbone="good-mlp")

    assert main(["train", "run.yaml"]) == 0

    err = capsys.readouterr().err
    assert "kplug: warning: plugin kplug_iso_import is disabled: ImportError: needs libfoo" in err
    assert (
        "kplug: warning: plugin kplug-iso-hook 1.2.3 is disabled: kplug_register_heads raised "
        "RuntimeError: head table is corrupt" in err
    )
    assert not (tmp_path / "broken-plugin-ran").exists()  # disabled means its other hooks do not run
    plugins = json.loads((tmp_path / "run" / "report.json").read_text())["versions"]["plugins"]
    assert plugins["kplug_iso_good"] == "kplug-iso-good 1.2.3"
    assert "kplug_iso_hook" not in plugins and "kplug_iso_import" not in plugins


def test_a_run_that_needs_a_broken_plugin_names_it_and_why(installed, tmp_path, capsys):
    installed("kplug_iso_import", BROKEN_IMPORT)
    write_config(tmp_path / "run.yaml", backbone="fancy-net")

    assert main(["train", "run.yaml"]) == 2

    err = capsys.readouterr().err
    assert "Unknown backbone 'fancy-net'" in err
    assert (
        "Plugin(s) that failed to load and may provide it: kplug_iso_import (ImportError: needs libfoo)"
        in err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml", "site"]


def test_kplug_plugins_shows_the_failed_plugin_and_its_error(installed, capsys):
    installed("kplug_iso_hook", BROKEN_HOOK)
    installed("kplug_iso_good", GOOD)

    assert main(["plugins"]) == 0

    captured = capsys.readouterr()
    assert "good-mlp" in captured.out and "kplug-iso-good 1.2.3" in captured.out
    assert (
        "BROKEN plugin kplug-iso-hook 1.2.3 (disabled): kplug_register_heads raised RuntimeError: "
        "head table is corrupt" in captured.err
    )


def test_kplug_doctor_reports_the_failed_plugins_from_the_index(installed, capsys):
    installed("kplug_iso_import", BROKEN_IMPORT)
    installed("kplug_iso_good", GOOD)

    assert main(["plugins"]) == 0  # builds the plugin index
    capsys.readouterr()
    assert main(["doctor"]) == 1  # from the index: no plugin is loaded again
    facts = json.loads(capsys.readouterr().out)
    assert facts["failures"] == ["kplug_iso_import: ImportError: needs libfoo"]
    assert facts["plugins"]["kplug_iso_good"] == "kplug-iso-good 1.2.3"


def test_no_plugins_loads_only_the_builtins(installed, tmp_path, capsys):
    installed("kplug_iso_import", BROKEN_IMPORT)
    installed("kplug_iso_good", GOOD)

    assert main(["--no-plugins", "plugins"]) == 0
    captured = capsys.readouterr()
    assert "kplug 0.1.0 (built-in)" in captured.out
    assert "good-mlp" not in captured.out and "BROKEN" not in captured.err

    write_config(tmp_path / "run.yaml", backbone="good-mlp")
    assert main(["train", "run.yaml", "--no-plugins"]) == 2  # the flag also works after the command
    err = capsys.readouterr().err
    assert (
        "Unknown backbone 'good-mlp'" in err
        and "Registered backbones: keras-file, keras-model, mlp, small-cnn." in err
    )
    assert "warning" not in err  # the broken plugin was never loaded

    write_config(tmp_path / "run.yaml")
    assert main(["--no-plugins", "train", "run.yaml"]) == 0
    assert capsys.readouterr().err == ""
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert all(v.endswith("(built-in)") for v in report["versions"]["plugins"].values())


def test_disable_plugins_leaves_a_broken_plugin_out(installed, tmp_path, monkeypatch, capsys):
    installed("kplug_iso_import", BROKEN_IMPORT)
    monkeypatch.setenv("KPLUG_DISABLE_PLUGINS", "kplug_iso_import")
    kplug.plugin.manager._default_plugins.cache_clear()
    write_config(tmp_path / "run.yaml", backbone="fancy-net")

    assert main(["train", "run.yaml"]) == 2

    err = capsys.readouterr().err
    assert "Unknown backbone 'fancy-net'" in err
    assert "kplug_iso_import" not in err  # disabled on purpose: neither loaded nor reported


def test_a_plugin_whose_command_hook_raises_leaves_the_other_commands(installed, capsys):
    installed("kplug_iso_command", COMMAND_RAISES)

    assert main(["plugins"]) == 0

    err = capsys.readouterr().err
    assert (
        "kplug: warning: plugin kplug-iso-command 1.2.3: kplug_add_commands raised RuntimeError: "
        "cannot add my command; its commands are not available." in err
    )


def test_a_plugin_whose_command_name_clashes_loses_its_commands_only(installed, capsys):
    installed("kplug_iso_clash", COMMAND_CLASHES)
    warning = (
        "kplug: warning: plugin kplug-iso-clash 1.2.3: kplug_add_commands adds the command 'train', "
        "which kplug already has; its commands are not available.\n"
    )

    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert captured.err == warning
    assert "clash-mlp" in captured.out  # its components still load

    assert main(["doctor"]) == 0
    captured = capsys.readouterr()
    assert captured.err == warning and json.loads(captured.out)["failures"] == []

    assert main(["init", "--output", "run.yaml"]) == 0
    assert capsys.readouterr().err == warning
    assert main(["train"]) == 2  # kplug's own train, not the plugin's
    assert capsys.readouterr().err == warning + (
        "kplug: error: kplug train needs a CONFIG file, or --resume RUN_DIR to continue a run.\n"
    )
    with pytest.raises(SystemExit) as exit_code:
        main(["greet"])  # added before the clash, taken back with the plugin's other commands
    assert exit_code.value.code == 2
    assert "invalid choice: 'greet'" in capsys.readouterr().err
