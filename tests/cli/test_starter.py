"""kplug init: every starter config validates, explains each field, and the image one trains as written."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import REPO

import kplug
from kplug.cli.main import main
from kplug.cli.starter import TASKS, starter_config
from kplug.plugin.resolve import resolve


@pytest.mark.parametrize("task", list(TASKS))
def test_starter_config_validates_and_comments_every_field(task, plugins) -> None:
    text = starter_config(task)
    config = kplug.load_config(yaml.safe_load(text))
    if task != "text-classification":  # the text backbone comes from the kplug-text plugin
        resolve(config, plugins)
    data = yaml.safe_load(text)
    for field in config.model_fields:
        if field != "tune":
            assert field in data, f"{task}: the starter config leaves out {field}"
    assert "# tune:" in text
    block = text[text.index("# tune:") :].splitlines()
    tune = yaml.safe_load("\n".join(line[2:] for line in block))["tune"]
    kplug.load_config({**data, "tune": tune})  # the commented-out search space is valid when enabled
    for line in text.splitlines():
        if ":" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"{task}: no comment explains {line.strip()!r}"


def test_text_starter_names_the_kplug_text_backbone(plugins) -> None:
    text_plugin = pytest.importorskip("kplug_text")
    text = starter_config("text-classification")
    config = kplug.load_config(yaml.safe_load(text))
    run = resolve(config, kplug.load_plugins([text_plugin], entry_points=False))
    assert run.backbone.component.factory is text_plugin.bert
    assert run.backbone.component.provider == "kplug_text (passed in Python)"
    assert run.backbone.options["path"] == "checkpoints/bert-base-uncased"
    assert run.preprocessor.component.factory is text_plugin.bert_preprocessor
    assert run.preprocessor.options["sequence_length"] == 128
    assert run.preprocessor.options["path"] == "checkpoints/bert-base-uncased"  # the backbone's, shared
    assert (run.dataset.component.name, run.dataset.options["text"]) == ("tsv", True)
    # every alternative the comment offers is a kplug-text backbone
    comment = next(line for line in text.splitlines() if line.lstrip().startswith("name: bert"))
    offered = comment.split("# kplug-text:")[1].split("(")[0].replace(",", " ").split()
    assert offered == ["bert", "distilbert", "minilm-l6"]
    for name in offered:
        assert run.plugins.registry.get("backbone", name).provider == "kplug_text (passed in Python)"
    with pytest.raises(kplug.ConfigError, match="model.backbone.name: Unknown backbone 'bert'"):
        resolve(config, plugins)  # built-ins alone do not have it


def test_init_writes_a_config_that_trains(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")  # built-ins only, whatever is installed
    shutil.copytree(REPO / "examples" / "data", tmp_path / "examples" / "data")
    assert main(["init", "--output", "digits.yaml"]) == 0
    assert "Wrote digits.yaml (image-classification)" in capsys.readouterr().out
    assert main(["init", "--output", "digits.yaml"]) == 2
    assert "exists" in capsys.readouterr().err
    config = yaml.safe_load((tmp_path / "digits.yaml").read_text())
    assert config["name"] == "digits" and config["output"]["dir"] == "runs/digits"
    config["data"]["limit"] = 200  # keep the test small
    config["train"]["stages"] = [{"epochs": 1, "trainable": ["heads/*"]}]
    config["train"]["verbose"] = 0
    result = kplug.fit(config, plugins=kplug.load_plugins(entry_points=False))
    assert (result.run_dir / "model.keras").is_file()
    assert main(["init", "--task", "regression", "--output", "table.yaml"]) == 0
    assert kplug.load_config(tmp_path / "table.yaml").model.heads[0].name == "regression"
    assert main(["init", "--output", "notes.txt"]) == 2
