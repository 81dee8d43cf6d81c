"""Loading a file never runs code: pickles and code disguised as configs, checkpoints, init
sources or run models are refused with a kplug error, and their payload never executes.

Each malicious file carries a payload that creates the file ``PWNED`` when it is unpickled
(or its code is run); every test checks the error and that ``PWNED`` does not exist.
"""

from __future__ import annotations

import pickle
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.cli.main import main
from kplug.train.checkpoint import latest_checkpoint


class Payload:
    """Unpickling this calls ``open(path, "w")``: the marker file appears if a pickle is ever loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled(marker: Path) -> bytes:
    return pickle.dumps({"weights": Payload(marker)})


def torch_style_archive(path: Path, marker: Path) -> Path:
    """A zip holding ``archive/data.pkl``, the layout ``torch.save`` writes."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickled(marker))
        archive.writestr("archive/version", "3\n")
    return path


def pickled_npz(path: Path, marker: Path) -> Path:
    np.savez(path, state0000=np.array([Payload(marker)], dtype=object))
    return path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a payload ran"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished run (with checkpoints) to copy and tamper with."""
    root = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = (rng.normal(0, 3, (3, 8))[y] + rng.normal(0, 1, (120, 8))).astype("float32")
    np.savez(root / "data.npz", x=x, y=y)
    config = blob_config(x, y)
    config["data"] = {"source": "npz", "options": {"path": str(root / "data.npz")}, "split": {"test": 0.2}}
    config["train"] = {"epochs": 2, "batch_size": 32, "verbose": 0}
    config["output"] = {"dir": str(root / "run"), "checkpoint_every_steps": 2, "keep_checkpoints": 5}
    kplug.fit(config, plugins=kplug.load_plugins(entry_points=False))
    return root / "run"


def interrupted_copy(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the run cut back to a mid-epoch checkpoint, so that --resume has work to do."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    for path in sorted((run_dir / "checkpoints").iterdir())[2:]:
        shutil.rmtree(path)
    return run_dir


@pytest.mark.parametrize("kind", ["pickle", "torch-archive"])
def test_resume_refuses_a_pickled_model_checkpoint(trained_run, tmp_path, marker, kind, capsys, monkeypatch):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")
    run_dir = interrupted_copy(trained_run, tmp_path)
    model_file = latest_checkpoint(run_dir).model_file
    if kind == "pickle":
        model_file.write_bytes(pickled(marker))
    else:
        torch_style_archive(model_file, marker)
    assert main(["train", "--resume", str(run_dir)]) == 2
    error = capsys.readouterr().err
    assert "cannot restore this checkpoint" in error and "Traceback" not in error


def test_resume_refuses_pickled_rng_state(trained_run, tmp_path, marker, capsys, monkeypatch):
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "none")
    run_dir = interrupted_copy(trained_run, tmp_path)
    pickled_npz(latest_checkpoint(run_dir).path / "rng.npz", marker)
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "kplug never loads pickles" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("evil.pt", torch_style_archive, "unknown file type"),
        ("evil.keras", lambda path, marker: path.write_bytes(pickled(marker)) and path, "not a valid .keras"),
        ("fake.keras", torch_style_archive, "cannot load this model file"),
        ("evil.npz", pickled_npz, "not a readable .npz archive of plain arrays"),
    ],
)
def test_init_refuses_pickles(blobs, tmp_path, marker, plugins, name, make, message):
    make(tmp_path / name, marker)
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["backbone"]["init"] = {"from": str(tmp_path / name)}
    with pytest.raises(kplug.CheckpointError, match=message):
        kplug.fit(config, plugins=plugins)


def test_init_refuses_a_directory_of_pickled_npy(blobs, tmp_path, marker, plugins):
    (tmp_path / "arrays" / "backbone").mkdir(parents=True)
    np.save(tmp_path / "arrays/backbone/kernel.npy", np.array([Payload(marker)], dtype=object))
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["backbone"]["init"] = {"from": str(tmp_path / "arrays")}
    with pytest.raises(kplug.CheckpointError, match="pickled arrays are refused"):
        kplug.fit(config, plugins=plugins)


def test_a_keras_model_with_code_is_refused_by_safe_mode(blobs, tmp_path, marker, plugins):
    """A .keras file may hold Python bytecode (a Lambda layer); kplug loads with safe_mode=True."""
    inputs = keras.Input((8,))
    # the cwd is tmp_path: the function creates the marker when it runs
    outputs = keras.layers.Lambda(lambda t: t * 1.0 if open("PWNED", "w") else t, name="evil")(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    marker.unlink()  # building the model ran the function once, here in the test
    x, y = blobs
    config = blob_config(x, y)
    config["model"]["backbone"]["init"] = {"from": str(tmp_path / "lambda.keras")}
    with pytest.raises(kplug.CheckpointError, match="safe.mode"):
        kplug.fit(config, plugins=plugins)


def test_predict_refuses_a_pickled_run_model(trained_run, tmp_path, marker):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    torch_style_archive(run_dir / "model.keras", marker)
    with pytest.raises(kplug.CheckpointError, match="cannot load this model file"):
        kplug.predict(run_dir)


def test_config_yaml_tags_that_run_code_are_refused(tmp_path, marker):
    (tmp_path / "run.yaml").write_text(f"name: !!python/object/apply:builtins.open ['{marker}', 'w']\n")
    with pytest.raises(kplug.ConfigError, match="YAML"):
        kplug.Trainer(tmp_path / "run.yaml")
