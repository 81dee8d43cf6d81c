"""`kplug train` on a local Ray cluster of two workers (``address: local``) against one process.

Both runs read the same global batches in the same order; with gradients synchronised, the two
workers, each on half of every batch, must end with the weights of the single-process run. One
worker is killed mid-run: the group starts again from the run's last checkpoint (``max_failures``)
and must still end with those weights (so the run before the kill and the resumed one are both checked).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import kplug
import pytest
import yaml
from conftest import TOLERANCE, cli_environment, max_difference, run_config

from kplug_ray.launch import has_checkpoint

pytestmark = pytest.mark.slow

RAY = {"name": "ray", "options": {"address": "local", "workers": 2, "cpus_per_worker": 1}}


def _start(folder: Path, distribution: dict, epochs: int) -> subprocess.Popen:
    (folder / "run.yaml").write_text(yaml.safe_dump(run_config(folder, "two", distribution, epochs)))
    return subprocess.Popen(
        [sys.executable, "-c", "from kplug.cli.main import entry_point; entry_point()", "train", "run.yaml"],
        cwd=folder,
        env=cli_environment(keras.backend.backend()),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _single(folder: Path, epochs: int) -> kplug.FitResult:
    return kplug.fit(run_config(folder, "single", {"name": "single-device"}, epochs), plugins=[])


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run by two Ray workers, one of them killed after the first checkpoint, and the same run by
    one process. One launch per backend: the cluster tests are the slowest in the suite."""
    folder = tmp_path_factory.mktemp("ray")
    distribution = {"name": "ray", "options": {**RAY["options"], "max_failures": 1}}
    started = time.perf_counter()
    launched = _start(folder, distribution, epochs=3)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(launched.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 600
    while not has_checkpoint(folder / "two") and launched.poll() is None:
        assert time.monotonic() < deadline, "".join(lines)[-3000:]
        time.sleep(0.05)
    worker = next(line for line in lines if line.startswith("kplug-ray: worker 1 on "))
    os.kill(int(worker.rsplit("pid ", 1)[1].rstrip(")\n")), signal.SIGKILL)  # the worker's Ray actor
    launched.wait(timeout=900)
    reader.join(timeout=10)
    seconds = time.perf_counter() - started
    output = "".join(lines)
    assert launched.returncode == 0, output[-4000:]
    return folder, output, seconds, _single(folder, epochs=3)


def test_a_killed_worker_restarts_the_group_from_the_last_checkpoint(killed):
    folder, output, _, _ = killed
    assert "kplug-ray: worker 1: the worker's process died" in output
    assert "starting the group again from the last checkpoint" in output
    assert "Resuming " in output
    assert json.loads((folder / "two" / "report.json").read_text())["ray"]["restarts"] == 1


def test_two_ray_workers_equal_one_process(killed):
    folder, _, seconds, single = killed
    two = keras.saving.load_model(folder / "two" / "model.keras", compile=False)  # loads on one device
    difference = max_difference(single.model.get_weights(), two.get_weights())
    report = json.loads((folder / "two" / "report.json").read_text())
    print(
        f"{keras.backend.backend()}: 2 Ray workers (one killed, group restarted) vs one process: max weight "
        f"difference {difference:.3g}; kplug train {seconds:.1f} s, "
        f"training {report['timings']['total_seconds']:.1f} s"
    )
    assert report["distribution"]["processes"] == 2
    assert difference < TOLERANCE


def test_report_records_the_cluster_and_the_workers(killed):
    folder, output, _, _ = killed
    ray = json.loads((folder / "two" / "report.json").read_text())["ray"]
    assert [worker["rank"] for worker in ray["workers"]] == [0, 1]
    assert f"training on the Ray cluster at {ray['address']} with 2 worker(s)" in output
    for worker in ray["workers"]:
        assert f"worker {worker['rank']} on {worker['node']} (pid {worker['pid']})" in output
