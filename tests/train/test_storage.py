"""Run directories and init sources at fsspec URLs: trained in a staging copy, uploaded after every
checkpoint, resumed, evaluated and used as ``init.from`` from the URL alone."""

from __future__ import annotations

import uuid

import fsspec
import numpy as np
import pytest
from conftest import InterruptAt

import kplug
from kplug.train.storage import PushAfterCheckpoints, RemoteRunDir


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("KPLUG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def memory_url():
    """A fresh ``memory://`` folder, removed afterwards (fsspec's memory store is process-wide)."""
    url = f"memory://kplug-tests/{uuid.uuid4().hex}"
    yield url
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(root):
        fs.rm(root, recursive=True)


def npz_config(tmp_path, blobs, output_dir, epochs=4):
    x, y = blobs
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    return {
        "name": "stored",
        "seed": 3,
        "data": {
            "source": "npz",
            "options": {"path": str(tmp_path / "blobs.npz")},
            "split": {"validation": 0.25},
        },
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [12]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": epochs, "batch_size": 32, "verbose": 0},
        "output": {"dir": output_dir},
    }


def stored_files(url):
    fs, root = fsspec.core.url_to_fs(url)
    return {path[len(root.rstrip("/")) :].lstrip("/") for path in fs.find(root)}


def weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_a_run_at_a_memory_url_is_stored_there_whole_and_evaluates_from_it(tmp_path, blobs, memory_url):
    result = kplug.fit(npz_config(tmp_path, blobs, memory_url))
    files = stored_files(memory_url)
    assert {"config.yaml", "model.keras", "labels.json", "metrics.csv", "report.json"} <= files
    assert any(name.startswith("checkpoints/epoch00004") for name in files)
    assert not any(".partial-" in name for name in files)
    local = kplug.evaluate(result.run_dir, split="validation")
    assert kplug.evaluate(memory_url, split="validation") == pytest.approx(local)


def test_a_file_url_writes_the_run_to_that_folder(tmp_path, blobs):
    kplug.fit(npz_config(tmp_path, blobs, f"file://{tmp_path}/shared/run"))
    assert (tmp_path / "shared" / "run" / "model.keras").is_file()
    assert not (tmp_path / "file:").exists()


def test_an_interrupted_run_resumes_from_the_url_alone_to_the_uninterrupted_weights(
    tmp_path, blobs, memory_url
):
    straight = kplug.fit(npz_config(tmp_path, blobs, str(tmp_path / "straight")))
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(
            npz_config(tmp_path, blobs, memory_url),
            plugins=kplug.load_plugins([InterruptAt(1)], entry_points=False),
        )
    assert any(name.startswith("checkpoints/epoch00001") for name in stored_files(memory_url))
    resumed = kplug.fit(resume=memory_url)  # a fresh local copy, pulled from the URL
    assert len(resumed.history["loss"]) == 4
    for got, want in zip(weights(resumed.model), weights(straight.model), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_second_run_to_the_same_url_is_refused_naming_it(tmp_path, blobs, memory_url):
    kplug.fit(npz_config(tmp_path, blobs, memory_url, epochs=1))
    with pytest.raises(
        kplug.ConfigError, match=rf"output.dir = '{memory_url}' already holds files.*--resume"
    ):
        kplug.fit(npz_config(tmp_path, blobs, memory_url, epochs=1))


def test_init_from_a_run_at_a_url(tmp_path, blobs, memory_url):
    source = kplug.fit(npz_config(tmp_path, blobs, memory_url, epochs=2))
    config = npz_config(tmp_path, blobs, str(tmp_path / "second"), epochs=1)
    config["model"]["backbone"]["init"] = {"from": memory_url}
    config["train"] = {"stages": [{"epochs": 1, "trainable": ["heads/*"]}], "verbose": 0}  # backbone frozen
    second = kplug.fit(config)
    backbone = source.model.get_layer("backbone").get_weights()
    for got, want in zip(second.model.get_layer("backbone").get_weights(), backbone, strict=True):
        np.testing.assert_allclose(got, want)


def test_push_uploads_new_checkpoints_whole_and_removes_pruned_ones(tmp_path, memory_url):
    remote = RemoteRunDir(memory_url)
    remote.start_new(overwrite=False)
    first = remote.staging / "checkpoints" / "epoch00001-batch000000-stage01"
    first.mkdir(parents=True)
    (first / "state.json").write_text("{}")
    (first / "model.keras").write_bytes(b"weights")
    remote.push()
    assert stored_files(memory_url) == {
        "checkpoints/epoch00001-batch000000-stage01/state.json",
        "checkpoints/epoch00001-batch000000-stage01/model.keras",
    }
    for path in first.iterdir():
        path.unlink()
    first.rmdir()
    (remote.staging / "metrics.csv").write_text("epoch\n1\n")
    remote.push()
    assert stored_files(memory_url) == {"metrics.csv"}


@pytest.mark.parametrize("after_batches", [True, False])
def test_a_step_checkpoint_is_uploaded_after_its_batch_only_when_steps_write_checkpoints(
    memory_url, after_batches
):
    remote = RemoteRunDir(memory_url)
    remote.start_new(overwrite=False)
    push = PushAfterCheckpoints(remote, after_batches=after_batches)
    step = remote.staging / "checkpoints" / "epoch00001-batch000004-stage01"
    step.mkdir(parents=True)
    (step / "state.json").write_text("{}")
    push.on_train_batch_end(4)
    uploaded = {"checkpoints/epoch00001-batch000004-stage01/state.json"} if after_batches else set()
    assert stored_files(memory_url) == uploaded
    push.on_epoch_end(0)
    assert stored_files(memory_url) == {"checkpoints/epoch00001-batch000004-stage01/state.json"}
