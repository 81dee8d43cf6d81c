"""Run directory files: atomic writes, refusing to clobber folders."""

from __future__ import annotations

import pytest

from kplug import rundir
from kplug.errors import ConfigError


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
