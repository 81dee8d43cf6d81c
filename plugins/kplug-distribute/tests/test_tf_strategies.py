"""TensorFlow MirroredStrategy over 2 logical CPU devices, against one device.

Logical devices can be set only before TensorFlow starts, so the cases run in one
fresh process (``mirrored`` with ``cpu_devices: 2`` sets them up there).
"""

from __future__ import annotations

import pytest
from conftest import max_difference, run_cases, weights

pytestmark = pytest.mark.backends("tensorflow")

TOLERANCE = 1e-5  # float32 sums in another order; measured 6e-8 here
MIRRORED = {"name": "mirrored", "options": {"cpu_devices": 2}}

CASES = [
    {"label": "mirrored", "distribution": MIRRORED},
    {"label": "single", "distribution": {"name": "single-device"}},
    {"label": "load_mirrored", "run": "mirrored"},
    {"label": "bad_batch", "distribution": MIRRORED, "overrides": {"train": {"batch_size": 31}}},
    {"label": "no_gpus", "distribution": {"name": "mirrored"}},
]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-cases")
    return root, run_cases(root, CASES, "tensorflow")


def test_mirrored_equals_one_device(results):
    root, found = results
    placement = found["mirrored"]["distribution"]
    assert placement["strategy"] == "mirrored" and placement["replicas"] == 2
    assert placement["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    assert set(placement["variables"].values()) == {"mirrored"}
    assert found["single"]["history"]["loss"] == pytest.approx(
        found["mirrored"]["history"]["loss"], abs=TOLERANCE
    )
    assert (
        max_difference(weights(root / "single/weights.npz"), weights(root / "mirrored/weights.npz"))
        < TOLERANCE
    )


def test_mirrored_checkpoint_loads_on_one_device(results):
    root, _ = results
    assert max_difference(weights(root / "mirrored/weights.npz"), weights(root / "load_mirrored.npz")) == 0.0


def test_batch_not_divisible_by_replicas(results):
    outcome = results[1]["bad_batch"]
    assert outcome["error"] == "ConfigError" and not outcome["wrote"]
    assert "train.batch_size = 31" in outcome["message"] and "multiple of 2" in outcome["message"]


def test_mirrored_without_gpus_is_refused(results):
    outcome = results[1]["no_gpus"]
    assert outcome["error"] == "ConfigError" and not outcome["wrote"]
    assert "0 GPU(s) found" in outcome["message"] and "nothing would run in parallel" in outcome["message"]
