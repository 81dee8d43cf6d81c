"""``kplug train`` lets a plugin train the run elsewhere (``kplug_launch``), e.g. on a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import yaml

import kplug
from kplug.cli.main import main


def write_config(path: Path, mnist_options: dict, epochs: int = 2) -> Path:
    config = {
        "name": "cli",
        "data": {"source": "idx", "options": dict(mnist_options), "limit": 100, "split": {"test": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": epochs, "verbose": 0},
        "output": {"dir": "runs/cli"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Launcher:
    """Trains every run "elsewhere": records what it was given and returns exit code 7."""

    def __init__(self) -> None:
        self.calls: list[tuple[kplug.RunConfig, dict]] = []

    @kplug.hookimpl
    def kplug_launch(self, config, train):
        self.calls.append((config, train))
        return 7


def test_train_returns_the_launchers_exit_code_with_the_config_and_the_command(tmp_path, mnist_options):
    config = write_config(tmp_path / "run.yaml", mnist_options)
    launcher = Launcher()
    assert main(["train", str(config), "--output", str(tmp_path / "elsewhere")], plugins=[launcher]) == 7
    [(seen, train)] = launcher.calls
    assert seen.output.dir == str(tmp_path / "elsewhere")  # --output applied to the config it decides on
    assert train == {"config": str(config), "output": str(tmp_path / "elsewhere"), "resume": None}
    assert not (tmp_path / "elsewhere").exists()  # nothing trained here


def test_resume_hands_over_the_config_saved_in_the_run_directory(tmp_path, mnist_options):
    run_dir = tmp_path / "runs" / "cli"
    run_dir.mkdir(parents=True)
    write_config(run_dir / "config.yaml", mnist_options, epochs=3)
    launcher = Launcher()
    assert main(["train", "--resume", str(run_dir)], plugins=[launcher]) == 7
    [(seen, train)] = launcher.calls
    assert (seen.train.epochs, seen.output.dir) == (3, str(run_dir))
    assert train == {"config": None, "output": None, "resume": str(run_dir)}


def test_a_process_of_a_launched_group_trains_itself(tmp_path, mnist_options, monkeypatch):
    """Under torchrun, srun or a launcher's workers (WORLD_SIZE set) the hook is not called again."""
    config = write_config(tmp_path / "run.yaml", mnist_options)
    monkeypatch.setenv("WORLD_SIZE", "2")
    launcher = Launcher()
    assert main(["train", str(config)], plugins=[launcher]) == 2  # single-device in a group of 2: refused
    assert launcher.calls == []


def test_a_launcher_returning_none_lets_the_run_train_here(tmp_path, mnist_options):
    config = write_config(tmp_path / "run.yaml", mnist_options, epochs=1)

    class Declines:
        @kplug.hookimpl
        def kplug_launch(self, config, train):
            return None

    assert main(["train", str(config), "--output", str(tmp_path / "here")], plugins=[Declines()]) == 0
    assert (tmp_path / "here" / "report.json").is_file()
