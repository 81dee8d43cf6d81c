"""Bad input through the CLI: exit code 2, a message naming the problem, no traceback, nothing written.

Each case is a regression test for a way users actually get it wrong.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import MNIST

from kplug.cli import main

IMAGES = str(MNIST / "images-idx3-ubyte.gz")
LABELS = str(MNIST / "labels-idx1-ubyte.gz")


def base_config() -> dict:
    return {
        "name": "bad",
        "data": {"source": "idx", "options": {"images": IMAGES, "labels": LABELS}, "limit": 120},
        "model": {
            "backbone": {"name": "small-cnn", "options": {"filters": [4], "dense_units": 8}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 1, "verbose": 0},
        "output": {"dir": "run"},
    }


def write_inputs(inputs: Path) -> None:
    """Small broken data files the cases point at."""
    inputs.mkdir()
    (inputs / "short.idx").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    (inputs / "nodims.idx").write_bytes(bytes([0, 0, 8, 0]))
    np.savez(inputs / "pickled.npz", x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    (inputs / "table.csv").write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    pixels = np.zeros((3, 14, 14), dtype="uint8")
    (inputs / "small14.idx").write_bytes(struct.pack(">IIII", 2051, 3, 14, 14) + pixels.tobytes())


def edit(config: dict, path: str, value) -> dict:
    target = config
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    return config


CSV_DATA = {"source": "csv", "options": {"path": "inputs/table.csv"}}

TRAIN_CASES = {
    "init map refers to a missing group": (
        {"model.backbone.init": {"from": "inputs", "map": {"backbone/(.*)": "backbone/\\3"}}},
        "refers to group 3, but the pattern has 1 group(s)",
    ),
    "negative layer width": (
        {"model.backbone": {"name": "mlp", "options": {"units": [-5]}}},
        "model.backbone: backbone 'mlp' could not be built from its options (units=[-5]",
    ),
    "zero filters": ({"model.backbone.options.filters": [0]}, "backbone 'small-cnn' could not be built"),
    "unknown activation": (
        {"model.backbone": {"name": "mlp", "options": {"activation": "nope"}}},
        "activation='nope'",
    ),
    "augmentation option Keras rejects": (
        {"augment": [{"name": "gaussian-noise", "options": {"stddev": -1}}]},
        "augment[0]: augmentation 'gaussian-noise' could not be built",
    ),
    "head dropout above one": (
        {"model.heads": [{"name": "classification", "options": {"dropout": 2.0}}]},
        "model.heads[0]: head 'classification' cannot be built",
    ),
    "callback option Keras rejects": (
        {"callbacks": [{"name": "reduce-lr-on-plateau", "options": {"factor": 2.0}}]},
        "callbacks[0]: callback 'reduce-lr-on-plateau' could not be built",
    ),
    "early stopping on a metric the run does not log": (
        {"callbacks": [{"name": "early-stopping", "options": {"monitor": "val_bogus"}}]},
        "callbacks[0].options.monitor = 'val_bogus': this run logs loss, accuracy (val_* needs",
    ),
    "head id with a slash": (
        {"model.heads": [{"name": "classification", "id": "a/b"}]},
        "model.heads[0].id = 'a/b'",
    ),
    "head id colliding with val_": (
        {"model.heads": [{"name": "classification", "id": "val_x"}]},
        "may not be 'val' or start with 'val_'",
    ),
    "image backbone on table data": (
        {"data": CSV_DATA},
        "model.backbone: backbone 'small-cnn' could not be built from its options",
    ),
    "labels file given as images": ({"data.options.images": LABELS}, "input_shape=(): Input 0"),
    "truncated idx header": ({"data.options.images": "inputs/short.idx"}, "ends after 6 bytes (truncated)"),
    "idx with no dimensions": ({"data.options.images": "inputs/nodims.idx"}, "declares 0 dimensions"),
    "pickled npz": (
        {"data": {"source": "npz", "options": {"path": "inputs/pickled.npz"}}},
        "kplug does not load pickles",
    ),
    "csv column out of range": (
        {"data": {"source": "csv", "options": {"path": "inputs/table.csv", "label": 99}}},
        "column 99 does not exist; the file has 3 columns",
    ),
    "csv delimiter of two characters": (
        {"data": {"source": "csv", "options": {"path": "inputs/table.csv", "delimiter": "ab"}}},
        "data.options.delimiter = 'ab': must be exactly one character",
    ),
    "seed beyond 32 bits": ({"seed": 2**40}, "seed = 1099511627776"),
    "negative num_classes": (
        {"model.heads": [{"name": "classification", "options": {"num_classes": -3}}]},
        "model.heads[0].options.num_classes = -3: Input should be greater than 0",
    ),
    "empty trainable list": (
        {"train.stages": [{"epochs": 1, "trainable": []}]},
        "train.stages[0].trainable = []",
    ),
    "trainable pattern matching nothing": (
        {"train": {"stages": [{"epochs": 1, "trainable": ["head/*"]}]}},
        "trainable: pattern 'head/*' matches no layer",
    ),
    "csv without the label column": (
        {"data": {"source": "csv", "options": {"path": "inputs/table.csv", "label": "target"}}},
        "feature column 'label' holds text ('cat' on data row 1)",
    ),
    "regression on text labels": (
        {"data": CSV_DATA, "model": {"backbone": {"name": "mlp"}, "heads": [{"name": "regression"}]}},
        "must hold numbers for a regression head; found 'cat'",
    ),
    "output into a folder that is not a run": (
        {"output": {"dir": "inputs", "overwrite": True}},
        "is a non-empty directory that is not a kplug run",
    ),
    "output under a file": ({"output": {"dir": "run.yaml/x"}}, "cannot create the run directory"),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_bad_training_input(case, tmp_path, capsys):
    write_inputs(tmp_path / "inputs")
    config = base_config()
    changes, expected = TRAIN_CASES[case]
    for path, value in changes.items():
        edit(config, path, value)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    before = sorted(p.name for p in (tmp_path / "inputs").iterdir())
    assert main(["train", "run.yaml"]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err and err.count("\n") <= 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", "run.yaml"]  # no run directory
    assert sorted(p.name for p in (tmp_path / "inputs").iterdir()) == before


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One small finished run on the MNIST slice, copied by tests that damage it."""
    root = tmp_path_factory.mktemp("finished")
    config = base_config()
    config["data"]["split"] = {"test": 0.2}
    config["output"]["dir"] = str(root / "run")
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(root / "run.yaml")]) == 0
    return root / "run"


def damaged_copy(run: Path, tmp_path: Path, name: str, content: bytes) -> str:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / name).write_bytes(content)
    return str(copy)


RUN_CASES = {
    "unknown --data option": (["evaluate", "{run}", "--data", "foo=bar"], "idx has no option 'foo'"),
    "--data value of the wrong type": (
        ["evaluate", "{run}", "--data", "scale=maybe"],
        "--data.scale = 'maybe'",
    ),
    "--data images of another size": (
        ["predict", "{run}", "--data", "{small14}"],
        "each example has shape (14, 14, 1); the run's model expects (28, 28, 1)",
    ),
    "--output in a missing directory": (
        ["predict", "{run}", "--output", "nowhere/p.jsonl"],
        "the directory nowhere does not exist",
    ),
    "resume a finished run": (
        ["train", "--resume", "{run}"],
        "has finished all 1 stage(s); nothing to resume",
    ),
    "edited labels.json": (["evaluate", "{labels}"], "labels.json: not a kplug label map"),
    "random bytes as model.keras": (["evaluate", "{model}"], "not a valid .keras archive"),
    "not a run directory": (["predict", "inputs"], "not a finished kplug run directory"),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_bad_run_directory_input(case, finished_run, tmp_path, capsys):
    write_inputs(tmp_path / "inputs")
    args, expected = RUN_CASES[case]
    names = {
        "run": str(finished_run),
        "small14": "inputs/small14.idx",
        "labels": "{labels}",
        "model": "{model}",
    }
    if "{labels}" in args:
        names["labels"] = damaged_copy(finished_run, tmp_path, "labels.json", json.dumps([1, 2]).encode())
    if "{model}" in args:
        names["model"] = damaged_copy(finished_run, tmp_path, "model.keras", np.random.bytes(500))
    argv = [arg.format(**names) for arg in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert "Traceback" not in err


def test_gzip_of_garbage_is_refused(tmp_path, capsys):
    (tmp_path / "junk.gz").write_bytes(gzip.compress(b"\x00\x00\x08"))
    config = base_config()
    config["data"]["options"]["images"] = "junk.gz"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "run.yaml"]) == 2
    assert "not an IDX file" in capsys.readouterr().err
