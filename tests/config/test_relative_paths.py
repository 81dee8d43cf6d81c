"""Relative input paths in a config file are read next to the file; the CLI and Python agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

import kplug
from kplug.cli.main import main
from kplug.config.paths import resolve_relative_paths


def _table(path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = ["a,b,c,y"] + [f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f},{r.sum():.4f}" for r in x]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def _config(data_path: str) -> dict:
    return {
        "name": "table",
        "data": {"source": "csv", "options": {"path": data_path, "label": "y"}, "split": {"validation": 0.2}},
        "model": {"backbone": {"name": "mlp", "options": {"units": [8]}}, "heads": [{"name": "regression"}]},
        "train": {"epochs": 1, "verbose": 0},
    }


def _project(tmp_path: Path) -> Path:
    """experiments/run.yaml naming data/table.csv, written next to it."""
    _table(tmp_path / "experiments" / "data" / "table.csv")
    config = tmp_path / "experiments" / "run.yaml"
    config.write_text(yaml.safe_dump(_config("data/table.csv")))
    return config


def test_a_config_file_reads_its_data_next_to_itself_from_any_directory(tmp_path, monkeypatch) -> None:
    config = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    expected = str((tmp_path / "experiments" / "data" / "table.csv").resolve())
    assert kplug.load_config(config).data.options["path"] == expected
    relative = kplug.load_config("../experiments/run.yaml")  # a relative config path too
    assert relative.data.options["path"] == expected


def test_the_cli_and_python_train_on_the_same_file(tmp_path, monkeypatch, plugins) -> None:
    config = _project(tmp_path)
    monkeypatch.chdir(tmp_path / "experiments" / "data")  # a cwd where data/table.csv does not exist
    assert main(["train", "../run.yaml", "--output", str(tmp_path / "cli")], plugins=plugins) == 0
    result = kplug.fit(config, plugins=plugins, output=tmp_path / "python")
    saved = [yaml.safe_load((d / "config.yaml").read_text()) for d in (tmp_path / "cli", result.run_dir)]
    paths = {s["data"]["options"]["path"] for s in saved}
    assert paths == {str((tmp_path / "experiments" / "data" / "table.csv").resolve())}


def test_a_dict_config_reads_relative_paths_from_the_working_directory(
    tmp_path, monkeypatch, plugins
) -> None:
    _project(tmp_path)
    monkeypatch.chdir(tmp_path / "experiments")
    assert kplug.load_config(_config("data/table.csv")).data.options["path"] == "data/table.csv"
    result = kplug.fit(_config("data/table.csv"), plugins=plugins)
    assert (tmp_path / "experiments" / result.run_dir / "model.keras").is_file()


def test_what_is_resolved_and_what_is_left_as_written(tmp_path) -> None:
    base = tmp_path / "configs"
    (base / "data").mkdir(parents=True)
    (base / "data" / "x.csv").write_text("a\n")
    (base / "weights.npz").write_text("")
    (base / "label").write_text("")  # a file named like a field value outside the path sections
    absolute = str(tmp_path / "elsewhere.csv")
    data = {
        "name": "label",
        "data": {
            "source": "csv",
            "options": {"path": "data/x.csv", "label": "label", "features": ["data", "./data"]},
        },
        "where": {"label": ["label"]},
        "model": {
            "backbone": {"name": "mlp", "init": {"from": "weights.npz", "map": {"x": "label"}}},
            "heads": [{"name": "regression", "options": {"checkpoint": absolute}}],
        },
        "distill": {"teacher": "runs/teacher", "options": {"alpha": 0.5}},
        "output": {"dir": "data"},
    }
    resolved = resolve_relative_paths(data, base)
    here = base.resolve()
    assert resolved["data"]["options"] == {
        "path": str(here / "data" / "x.csv"),
        "label": "label",  # a bare word is a column or a name, even when a file of that name exists
        "features": ["data", str(here / "data")],
    }
    assert resolved["model"]["backbone"]["init"]["from"] == str(here / "weights.npz")
    assert resolved["model"]["backbone"]["init"]["map"] == {"x": "label"}  # not a path section
    assert resolved["model"]["heads"][0]["options"]["checkpoint"] == absolute  # absolute: unchanged
    assert resolved["distill"]["teacher"] == "runs/teacher"  # nothing there: the working directory's
    assert resolved["name"] == "label" and resolved["where"] == {"label": ["label"]}
    assert resolved["output"] == {"dir": "data"}  # the run directory is relative to the working directory
    assert data["data"]["options"]["path"] == "data/x.csv"  # the input is not changed in place


def test_run_from_the_configs_folder_a_path_is_kept_as_written(tmp_path, monkeypatch) -> None:
    config = _project(tmp_path)
    monkeypatch.chdir(config.parent)  # the same file either way: messages show what the user wrote
    assert kplug.load_config("run.yaml").data.options["path"] == "data/table.csv"
