"""The kplug command: train / evaluate / predict / plugins / doctor, exit codes and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kplug
from kplug.cli.main import main


def write_config(path: Path, mnist_options: dict, **changes) -> Path:
    config = {
        "name": "cli",
        "seed": 0,
        "data": {"source": "idx", "options": dict(mnist_options), "limit": 300, "split": {"test": 0.2}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [32]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 5, "optimizer": {"learning_rate": 3.0e-3}, "verbose": 0},
        "output": {"dir": "runs/cli"},
    }
    for dotted, value in changes.items():
        target = config
        *parents, last = dotted.split(".")
        for key in parents:
            target = target[key]
        target[last] = value
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_evaluate_predict(tmp_path, mnist_options, capsys):
    config = write_config(tmp_path / "run.yaml", mnist_options)
    assert main(["train", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Final test metrics: accuracy" in out and "Run directory: runs/cli" in out

    assert main(["evaluate", "runs/cli"]) == 0
    table = capsys.readouterr().out.splitlines()
    # a table: the split, how many examples, then one row per metric
    assert [row.split()[0] for row in table] == ["split", "examples", "accuracy", "loss"]
    tested = json.loads(Path("runs/cli/report.json").read_text())["data"]["test"]
    assert table[0].split() == ["split", "test"] and table[1].split() == ["examples", str(tested)]
    metrics = json.loads(Path("runs/cli/evaluation-test.json").read_text())
    assert metrics["accuracy"] > 0.5
    assert table[2].split() == ["accuracy", f"{metrics['accuracy']:.4f}"]

    data = [f"images={mnist_options['images']}", f"labels={mnist_options['labels']}"]
    assert main(["evaluate", "runs/cli", "--data", *data]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["data", "options", "images,", "labels"] and table[1].split() == [
        "examples",
        "2000",
    ]

    assert main(["predict", "runs/cli", "--data", mnist_options["images"], "--output", "preds.jsonl"]) == 0
    lines = Path("preds.jsonl").read_text().splitlines()
    assert len(lines) == 2000
    record = json.loads(lines[0])
    # unlabelled images: no true_label; labels are integers, as in the idx file
    assert list(record) == ["index", "label", "label_id", "probabilities", "logits"]
    assert record["index"] == 0 and isinstance(record["label"], int)


def test_predict_writes_csv_with_the_true_label(tmp_path, mnist_options, capsys):
    config = write_config(tmp_path / "run.yaml", mnist_options)
    assert main(["train", str(config)]) == 0
    capsys.readouterr()
    assert main(["predict", "runs/cli", "--output", "preds.csv"]) == 0  # csv from the extension
    tested = json.loads(Path("runs/cli/report.json").read_text())["data"]["test"]
    assert f"Wrote {tested} predictions to preds.csv (csv)" in capsys.readouterr().err
    rows = list(csv.DictReader(Path("preds.csv").open()))
    assert list(rows[0]) == ["index", "label", "true_label", "label_id", "probabilities", "logits"]
    assert len(rows) == tested and len(json.loads(rows[0]["probabilities"])) == 10
    records = kplug.predict("runs/cli")
    assert [int(row["true_label"]) for row in rows] == [r["true_label"] for r in records]
    assert [int(row["label"]) for row in rows] == [r["label"] for r in records]
    # --format wins over the extension; without --output the records go to stdout
    assert main(["predict", "runs/cli", "--format", "csv"]) == 0
    assert capsys.readouterr().out == Path("preds.csv").read_text()
    assert main(["predict", "runs/cli", "--format", "jsonl", "--output", "preds.csv"]) == 0
    assert [json.loads(line) for line in Path("preds.csv").read_text().splitlines()] == records


def test_output_flag_overrides_the_run_directory(tmp_path, mnist_options, capsys):
    config = write_config(tmp_path / "run.yaml", mnist_options)
    assert main(["train", str(config), "--output", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "report.json").is_file()
    assert not (tmp_path / "runs").exists()


BAD_INPUTS = {
    "missing data file": (
        {"data.options.images": "nope/images.gz"},
        "idx could not read 'nope/images.gz': No such file",
    ),
    "label out of range": (
        {"model.heads": [{"name": "classification", "options": {"num_classes": 5}}]},
        "Label 9 of target 'label' is out of range",
    ),
    "unknown backbone": (
        {"model.backbone": {"name": "no-such-net"}},
        "Unknown backbone 'no-such-net'. Registered backbones: ",  # installed plugins add more
    ),
    "negative learning rate": (
        {"train.optimizer": {"learning_rate": -0.001}},
        "train.optimizer.learning_rate = -0.001: Input should be greater than 0",
    ),
    "unknown option": (
        {"model.backbone": {"name": "mlp", "options": {"unit": 3}}},
        "mlp has no option 'unit'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_paragraph(case, tmp_path, mnist_options, capsys):
    changes, expected = BAD_INPUTS[case]
    config = write_config(tmp_path / "run.yaml", mnist_options, **changes)
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kplug: error: ") and expected in err
    assert "Traceback" not in err and "\n\n" not in err.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]  # nothing written


def test_yaml_syntax_error_exits_2(tmp_path, capsys):
    (tmp_path / "run.yaml").write_text("data: {source: idx\nmodel: [\n")
    assert main(["train", "run.yaml"]) == 2
    assert "run.yaml: YAML syntax error at line" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "run.yaml").write_text("data: {source: idx\n")
    with pytest.raises(Exception, match="YAML syntax error"):
        main(["--debug", "train", "run.yaml"])


def test_plugins_and_doctor(capsys):
    assert main(["plugins"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["KIND", "NAME", "PROVIDER", "DESCRIPTION"]
    assert "backbone      small-cnn" in table and "kplug 0.1.0 (built-in)" in table
    assert main(["doctor"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["backend"] == os.environ["KERAS_BACKEND"] and facts["devices"] and facts["failures"] == []


def test_doctor_shows_the_process_group_it_would_join(monkeypatch, capsys):
    srun = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "1", "SLURM_JOB_NODELIST": "node[3-4]"}
    for name, value in {**srun, "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    assert main(["doctor"]) == 0
    group = json.loads(capsys.readouterr().out)["process_group"]
    assert group == {
        "engine": "slurm",
        "rank": 1,
        "world_size": 2,
        "local_rank": 1,
        "coordinator": "node3:29500",
    }
    assert "WORLD_SIZE" not in os.environ  # doctor describes the group; it joins nothing


@pytest.mark.slow
def test_console_script_exit_code_and_stderr(tmp_path):
    """The installed `kplug` command itself, in a subprocess."""
    (tmp_path / "run.yaml").write_text(
        "data: {source: idx}\nmodel: {backbone: {name: mlp}, heads: [{name: classification}]}\n"
    )
    script = Path(sys.executable).parent / "kplug"
    done = subprocess.run([str(script), "train", "run.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert "data.options: idx has no option" not in done.stderr
    assert "kplug: error: data.options.images = '<missing>': Field required" in done.stderr
    assert "Traceback" not in done.stderr


class HelloCommand:
    """A throwaway plugin adding `kplug hello NAME`."""

    @staticmethod
    @kplug.hookimpl
    def kplug_add_commands(commands):
        hello = commands.add_parser("hello", help="greet")
        hello.add_argument("name")
        hello.set_defaults(handler=HelloCommand.run)

    @staticmethod
    def run(args):
        if args.name == "nobody":
            raise kplug.ConfigError("hello NAME: 'nobody' is nobody.")
        print(f"hello {args.name}")
        return 0


def test_plugins_add_commands(capsys):
    plugins = kplug.load_plugins([HelloCommand()], entry_points=False)
    assert main(["hello", "kplug"], plugins=plugins) == 0
    assert capsys.readouterr().out == "hello kplug\n"
    assert main(["hello", "nobody"], plugins=plugins) == 2
    assert "kplug: error: hello NAME: 'nobody' is nobody." in capsys.readouterr().err


class SecondHello:
    """A second plugin adding `kplug hello` (and, before that, `kplug hi`)."""

    @staticmethod
    @kplug.hookimpl
    def kplug_add_commands(commands):
        commands.add_parser("hi").set_defaults(handler=lambda args: 0)
        commands.add_parser("hello")


def test_a_second_plugin_taking_a_command_name_loses_its_commands(capsys):
    plugins = kplug.load_plugins([HelloCommand(), SecondHello()], entry_points=False)

    assert main(["hello", "kplug"], plugins=plugins) == 0
    captured = capsys.readouterr()
    assert captured.out == "hello kplug\n"
    assert captured.err == (
        "kplug: warning: plugin SecondHello (passed in Python): kplug_add_commands adds the command "
        "'hello', which plugin HelloCommand (passed in Python) already has; its commands are not available.\n"
    )
    with pytest.raises(SystemExit) as exit_code:
        main(["hi"], plugins=plugins)  # added before the clash, taken back with the plugin's others
    assert exit_code.value.code == 2
    assert "invalid choice: 'hi'" in capsys.readouterr().err
