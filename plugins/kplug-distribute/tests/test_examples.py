"""The shipped digits example, unchanged but for one epoch, on 4 JAX devices and 2 processes.

Its validation and test splits have 106 examples: in batches of 32 the last has 10, which
4 devices split only once padded (kplug.data.padding).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import REPO, launch_cli

EXAMPLE = REPO / "examples" / "digits" / "pretrain.yaml"


def _example(tmp_path: Path) -> Path:
    """pretrain.yaml with ``distribution: auto``, one epoch and its data paths made absolute."""
    config = yaml.safe_load(EXAMPLE.read_text())
    options = config["data"]["options"]
    for key in ("images", "labels"):
        options[key] = str((EXAMPLE.parent / options[key]).resolve())
    config["train"]["epochs"] = 1
    config["distribution"] = {"name": "auto"}
    config["output"] = {"dir": str(tmp_path / "run")}
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "run" / "report.json").read_text())


@pytest.mark.slow
@pytest.mark.backends("jax")
def test_digits_on_four_jax_devices(tmp_path):
    launch_cli(
        tmp_path,
        ["train", str(_example(tmp_path))],
        "jax",
        XLA_FLAGS="--xla_force_host_platform_device_count=4",
    )
    report = _report(tmp_path)
    assert report["distribution"]["strategy"] == "data-parallel" and report["distribution"]["replicas"] == 4
    assert report["data"]["validation"] == 106  # its last batch of 10 padded to 12
    correct = report["metrics"]["accuracy"] * report["data"]["test"]
    assert correct == pytest.approx(round(correct), abs=1e-3)  # a share of the 106 real rows, not of 108


@pytest.mark.slow
@pytest.mark.backends("tensorflow", "torch")
def test_digits_on_two_processes(tmp_path):
    import keras

    launch_cli(tmp_path, ["train", str(_example(tmp_path)), "--nproc", "2"], keras.backend.backend())
    report = _report(tmp_path)
    assert report["distribution"]["processes"] == 2
    assert report["data"]["validation"] == 106
