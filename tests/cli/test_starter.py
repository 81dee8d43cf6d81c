"""kplug init: every starter config validates, explains each field, and trains as written from anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import kplug
from kplug.cli.main import main
from kplug.cli.starter import SAMPLE_DATA, TASKS, sample_data, starter_config
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


def test_text_starter_names_the_installed_minilm(plugins) -> None:
    text_plugin = pytest.importorskip("kplug_text")
    text = starter_config("text-classification")
    config = kplug.load_config(yaml.safe_load(text))
    run = resolve(config, kplug.load_plugins([text_plugin], entry_points=False))
    assert run.backbone.component.factory is text_plugin.minilm_l6
    assert run.backbone.component.provider == "kplug_text (passed in Python)"
    assert run.backbone.options["path"] is None  # the pretrained weights installed with kplug-text
    assert run.preprocessor.component.factory is text_plugin.minilm_l6_preprocessor
    assert run.preprocessor.options["sequence_length"] == 40
    assert (run.dataset.component.name, run.dataset.options["text"]) == ("tsv", True)
    # every alternative the comment offers is a kplug-text backbone
    comment = next(line for line in text.splitlines() if line.lstrip().startswith("name: minilm-l6 "))
    offered = comment.split("# kplug-text:")[1].split("(")[0].replace(",", " ").split()
    assert offered == ["minilm-l6", "bert", "distilbert"]
    for name in offered:
        assert run.plugins.registry.get("backbone", name).provider == "kplug_text (passed in Python)"
    with pytest.raises(kplug.ConfigError, match="model.backbone.name: Unknown backbone 'minilm-l6'"):
        resolve(config, plugins)  # built-ins alone do not have it


def _shrink(path: Path, limit: int) -> None:
    """Make a written starter train fast: ``limit`` examples, one short stage, no progress bar."""
    config = yaml.safe_load(path.read_text())
    config["data"]["limit"] = limit
    config["train"]["stages"] = [{**config["train"]["stages"][0], "epochs": 1}]
    config["train"]["verbose"] = 0
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# the text starter fine-tunes MiniLM (about 20 CPU-seconds): slow, like the wheel-install run of
# every starter (tests/cli/test_starter_wheel.py) that also guards it
@pytest.mark.parametrize(
    "task",
    [pytest.param(task, marks=pytest.mark.slow) if task == "text-classification" else task for task in TASKS],
)
def test_each_starter_trains_as_written_from_another_directory(task, tmp_path, capsys, monkeypatch) -> None:
    # built-ins only, whatever is installed; the text starter needs kplug-text too
    extra = [pytest.importorskip("kplug_text")] if task == "text-classification" else []
    plugins = kplug.load_plugins(extra, entry_points=False)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)  # an empty directory: no examples/, nothing but what init writes
    assert main(["init", "--task", task, "--output", "starter.yaml"]) == 0
    folder = SAMPLE_DATA[task]
    assert f"sample data in {Path('data') / folder}" in capsys.readouterr().out
    shipped = sorted(item.name for item in sample_data(task).iterdir() if item.is_file())
    assert sorted(p.name for p in (project / "data" / folder).iterdir()) == shipped
    config = yaml.safe_load((project / "starter.yaml").read_text())
    assert config["name"] == "starter" and config["output"]["dir"] is None
    _shrink(project / "starter.yaml", limit=60 if task == "text-classification" else 200)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the config's relative data paths are read next to it
    assert main(["train", str(project / "starter.yaml")], plugins=plugins) == 0
    run_dir = elsewhere / "runs" / "starter"  # name alone decides the run directory
    assert (run_dir / "model.keras").is_file()
    assert (run_dir / "metrics.csv").read_text().count("\n") == 2  # header and one epoch


def test_renaming_the_run_moves_the_run_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")
    assert main(["init", "--task", "regression", "--output", "table.yaml"]) == 0
    config = yaml.safe_load((tmp_path / "table.yaml").read_text())
    config["name"] = "renamed"
    assert kplug.load_config(config).run_dir() == Path("runs/renamed")
    config["output"]["dir"] = "elsewhere/run"
    assert kplug.load_config(config).run_dir() == Path("elsewhere/run")


def test_init_keeps_identical_sample_data_and_refuses_to_replace_edited_data(tmp_path, capsys) -> None:
    assert main(["init", "--output", "a.yaml"]) == 0
    assert main(["init", "--output", "b.yaml"]) == 0  # the same sample data: left as it is
    labels = tmp_path / "data" / "mnist" / "labels-idx1-ubyte.gz"
    labels.write_bytes(b"my own labels")
    capsys.readouterr()
    assert main(["init", "--output", "c.yaml"]) == 2
    assert "labels-idx1-ubyte.gz exists and differs from kplug's sample data" in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists() and labels.read_bytes() == b"my own labels"
    assert main(["init", "--output", "c.yaml", "--force"]) == 0
    assert labels.read_bytes() == sample_data("image-classification").joinpath(labels.name).read_bytes()


def test_init_refuses_existing_files_and_other_suffixes(tmp_path, capsys) -> None:
    assert main(["init", "--output", "digits.yaml"]) == 0
    assert "Wrote digits.yaml (image-classification)" in capsys.readouterr().out
    assert main(["init", "--output", "digits.yaml"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["init", "--task", "regression", "--output", "table.yaml"]) == 0
    assert kplug.load_config(tmp_path / "table.yaml").model.heads[0].name == "regression"
    assert main(["init", "--output", "notes.txt"]) == 2
