"""Run config files: YAML / JSON / TOML, round trips, and errors for unreadable files."""

from __future__ import annotations

import json

import pytest
import yaml

from kplug.config.load import dump_config, load_config, parse_config
from kplug.errors import ConfigError

MINIMAL = {
    "data": {"source": "idx", "options": {"images": "a.gz", "labels": "b.gz"}},
    "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "classification"}]},
}


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_every_file_format_loads_the_same_config(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    if suffix == ".yaml":
        path.write_text(yaml.safe_dump(MINIMAL))
    elif suffix == ".json":
        path.write_text(json.dumps(MINIMAL))
    else:
        path.write_text(
            '[data]\nsource = "idx"\n[data.options]\nimages = "a.gz"\nlabels = "b.gz"\n'
            '[model.backbone]\nname = "mlp"\n[[model.heads]]\nname = "classification"\n'
        )
    assert load_config(path) == parse_config(MINIMAL)


def test_resolved_config_round_trips_through_yaml(tmp_path):
    config = parse_config(
        {
            **MINIMAL,
            "name": "digits",
            "seed": 7,
            "data": {
                **MINIMAL["data"],
                "where": {"label": [5, 6]},
                "limit": 100,
                "split": {"validation": 0.1},
            },
            "model": {
                "backbone": {
                    "name": "small-cnn",
                    "init": {"from": "runs/pre", "map": {"backbone/(.*)": "backbone/\\1"}},
                },
                "heads": [{"name": "classification", "id": "digits"}],
            },
            "train": {
                "stages": [{"epochs": 2, "trainable": ["heads/*"]}, {"epochs": 1, "learning_rate": 1e-4}]
            },
        }
    )
    dump_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert config.model.backbone.init.from_ == "runs/pre"


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: idx\n  options: {images: [unclosed\n")
    with pytest.raises(ConfigError, match=r"run.yaml: YAML syntax error.*line"):
        load_config(path)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("run.json", "{bad json", "JSON syntax error at line 1"),
        ("run.toml", "a = = 1", "TOML syntax error"),
        ("run.yaml", "- just\n- a list\n", "must be a mapping"),
        ("run.ini", "x=1", "use .yaml, .yml, .json or .toml"),
    ],
)
def test_unreadable_config_files(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("nope.yaml")


def test_yaml_loader_refuses_python_tags(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("data: !!python/object/apply:os.system ['echo pwned > pwned.txt']\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)
    assert not (tmp_path / "pwned.txt").exists()
