"""Run directory files: atomic writes, refusing to clobber folders."""

from __future__ import annotations

import os
import stat

import pytest
from conftest import blob_config

import kplug
from kplug.errors import ConfigError
from kplug.train import rundir


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "report.json"
    rundir.write_json(target, {"a": 1})

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        rundir.atomic_write(target, broken)
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_prepare_run_dir_rules(tmp_path):
    run = tmp_path / "run"
    rundir.prepare_run_dir(run, overwrite=False)
    (run / "config.yaml").write_text("name: x\n")
    with pytest.raises(ConfigError, match="already holds a run"):
        rundir.prepare_run_dir(run, overwrite=False)
    rundir.prepare_run_dir(run, overwrite=True)
    assert list(run.iterdir()) == []
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(ConfigError, match="not a kplug run"):
        rundir.prepare_run_dir(precious, overwrite=True)
    assert (precious / "thesis.txt").exists()


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_run_is_readable_by_others_as_the_umask_allows(blobs, plugins, umask_022):
    x, y = blobs
    config = blob_config(x, y, train={"epochs": 1, "batch_size": 64, "verbose": 0})
    run_dir = kplug.Trainer(config, plugins=plugins).fit().run_dir

    modes = {str(path.relative_to(run_dir)): stat.S_IMODE(path.stat().st_mode) for path in run_dir.rglob("*")}
    checkpoints = [name for name in modes if name.startswith("checkpoints/")]
    assert {"config.yaml", "report.json", "model.keras"} <= set(modes)
    assert any(name.endswith("/model.keras") for name in checkpoints)
    expected = {name: 0o755 if (run_dir / name).is_dir() else 0o644 for name in modes}
    assert {name: oct(mode) for name, mode in modes.items()} == {
        name: oct(mode) for name, mode in expected.items()
    }
