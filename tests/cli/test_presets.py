"""`kplug presets`: every backbone's `presets=` listing, marked by whether it is on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

import kplug
from kplug import plugin
from kplug.cli.main import main


def tiny(units: int = 4, preset: str | None = None):
    """A stand-in backbone factory (never built here)."""


class Listing:
    """A throwaway plugin: two backbones that list presets, one whose listing breaks."""

    def __init__(self, here: Path) -> None:
        self.here = here

    @plugin.hookimpl
    def kplug_register_backbones(self, register):
        register(
            "tiny-pretrained",
            tiny,
            presets=lambda: [
                plugin.Preset("tiny_here", location=str(self.here), source="test", description="on disk"),
                plugin.Preset("tiny_away", source="test", description="downloads"),
            ],
        )
        register("tiny-sized", tiny, presets=lambda: [plugin.Preset("x", with_options={"units": 8})])
        register("tiny-broken", tiny, presets=lambda: ["not a preset"])


def run(capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    loaded = kplug.load_plugins([Listing(tmp_path)], entry_points=False)
    code = main(["presets", *args], plugins=loaded)
    out, err = capsys.readouterr()
    return code, out, err


def test_presets_lists_each_backbone_and_marks_what_is_here(capsys, tmp_path: Path) -> None:
    code, out, err = run(capsys, tmp_path)
    assert code == 0
    lines = {line.split()[1] + " " + line.split()[2]: line for line in out.splitlines()[1:]}
    here = lines["preset: tiny_here"]
    assert here.split()[0] == "tiny-pretrained" and here.split()[3] == "yes" and str(tmp_path) in here
    assert lines["preset: tiny_away"].split()[3] == "no"
    assert "units: 8, preset: x" in out
    assert "backbone 'tiny-broken'" in err and "not kplug.plugin.Preset" in err
    assert "3 presets, 1 on this machine" in err and "KPLUG_PRESETS" in err


def test_here_lists_only_what_is_on_this_machine(capsys, tmp_path: Path) -> None:
    _, out, _ = run(capsys, tmp_path, "--here")
    assert "tiny_here" in out and "tiny_away" not in out


def test_registered_preset_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    for name, config in (("a", '{"class_name": "ResNetBackbone"}'), ("b", "not json")):
        (models / name).mkdir(parents=True)
        (models / name / "config.json").write_text(config)
    (models / "empty").mkdir()
    single = tmp_path / "single"
    single.mkdir()
    (single / "config.json").write_text("{}")
    (single / "image_converter.json").write_text("{}")
    monkeypatch.setenv("KPLUG_PRESETS", f"{models}:{tmp_path / 'missing'}:{single}")
    found = plugin.preset_directories()
    assert [(d.name, d.class_name) for d in found] == [("a", "ResNetBackbone"), ("b", ""), ("single", "")]
    assert "image_converter.json" in found[2].files
    assert plugin.find_preset_directory("b").path == models / "b"
    assert plugin.find_preset_directory("empty") is None
