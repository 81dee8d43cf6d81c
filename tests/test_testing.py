"""kplug.testing's pytest hooks: ``--slow`` runs the tests marked ``slow``, which are skipped otherwise;
``slow("jax")`` is slow on the backends named only; ``--only-slow`` runs the slow cases alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kplug.testing import slow_params

REPO = Path(__file__).resolve().parents[1]

# kplug.testing's hooks do not depend on the backend: checked in one backend's pass
pytestmark = pytest.mark.backends("torch")

SUITE = """
import time

import keras
import pytest


@pytest.mark.slow
def test_slow_case():
    time.sleep(0.3)


@pytest.mark.slow(keras.backend.backend())
def test_slow_on_this_backend():
    time.sleep(0.3)


@pytest.mark.slow("another-backend")
def test_slow_on_another_backend_only():
    pass


def test_quick_case():
    pass
"""


def run_pytest(root: Path, *args: str) -> str:
    """Run pytest on two tiny suites in one session (as `nox -s tests` runs the small plugin suites),
    each with a conftest that imports kplug.testing's hooks; its output."""
    for suite in ("a", "b"):
        (root / suite).mkdir()
        (root / suite / "conftest.py").write_text(
            "from kplug.testing import pytest_addoption, pytest_collection_modifyitems, pytest_configure  # noqa: F401\n"
        )
        (root / suite / f"test_{suite}.py").write_text(SUITE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rs",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(root),
            str(root / "a"),
            str(root / "b"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("args", "passed", "skipped", "deselected"),
    [
        pytest.param((), 4, 4, 0, id="quick"),
        # each case is a pytest in a fresh interpreter (9 s): the quick set keeps the default's
        pytest.param(("--slow",), 8, 0, 0, id="slow", marks=pytest.mark.slow),
        pytest.param(("--only-slow",), 4, 0, 4, id="only-slow", marks=pytest.mark.slow),
    ],
)
def test_slow_tests_run_only_with_the_slow_option(tmp_path, args, passed, skipped, deselected):
    output = run_pytest(tmp_path, "-v", *args)
    summary = output.strip().splitlines()[-1]
    assert f"{passed} passed" in summary
    assert (f"{skipped} skipped" in summary) == bool(skipped)
    assert (f"{deselected} deselected" in summary) == bool(deselected)
    # a case slow on another backend only is in this backend's quick set, not in its slow pass
    assert ("test_slow_on_another_backend_only PASSED" in output) == ("--only-slow" not in args)
    if skipped:
        assert "slow end-to-end case: run with --slow" in output
        assert "test_slow_on_this_backend SKIPPED" in output
        assert "slow cases:" not in output
    else:  # --slow, --only-slow: the summary adds up the slow cases (on this backend) and the rest
        match = re.search(
            r"slow cases: (\d+) tests, ([\d.]+) s of ([\d.]+) s; the quick set: ([\d.]+) s", output
        )
        assert match, output
        tests, slow, wall, quick = int(match[1]), float(match[2]), float(match[3]), float(match[4])
        assert tests == 4
        assert slow >= 1.2
        assert abs(wall - slow - quick) < 0.2


@pytest.mark.slow  # a pytest with two workers in fresh interpreters (17 s)
def test_on_xdist_workers_the_summary_compares_test_time_not_wall_time(tmp_path):
    """Workers run slow cases side by side: their summed time can exceed the wall time."""
    output = run_pytest(tmp_path, "--only-slow", "-n", "2")
    assert "4 passed" in output.strip().splitlines()[-1]
    match = re.search(
        r"slow cases: (\d+) tests, ([\d.]+) s of ([\d.]+) s of test time on 2 workers "
        r"\(wall ([\d.]+) s\); the quick set: ([\d.]+) s of test time",
        output,
    )
    assert match, output
    tests, slow, total, quick = int(match[1]), float(match[2]), float(match[3]), float(match[5])
    assert tests == 4 and slow >= 1.2
    assert abs(total - slow - quick) < 0.05


def test_slow_params_marks_only_the_named_values_on_the_named_backends():
    params = slow_params(["convnext", "mlp", "vit"], {"convnext", "vit"}, "jax")
    assert params[1] == "mlp"
    assert [p.values for p in (params[0], params[2])] == [("convnext",), ("vit",)]
    assert [[(m.name, m.args) for m in p.marks] for p in (params[0], params[2])] == [[("slow", ("jax",))]] * 2
    everywhere = slow_params(["a", "b"], {"b"})
    assert everywhere[0] == "a"
    assert [(m.name, m.args) for m in everywhere[1].marks] == [("slow", ())]


def test_slow_params_refuses_a_value_it_does_not_have():
    with pytest.raises(ValueError, match=r"\['vitt'\] are not among the values"):
        slow_params(["vit"], {"vitt"}, "jax")
