"""kplug.testing's pytest hooks: ``--slow`` runs the tests marked ``slow``, which are skipped otherwise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SUITE = """
import time

import pytest


@pytest.mark.slow
def test_slow_case():
    time.sleep(0.3)


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


@pytest.mark.parametrize(("args", "passed", "skipped"), [((), 2, 2), (("--slow",), 4, 0)])
def test_slow_tests_run_only_with_the_slow_option(tmp_path, args, passed, skipped):
    output = run_pytest(tmp_path, *args)
    summary = output.strip().splitlines()[-1]
    assert f"{passed} passed" in summary
    assert (f"{skipped} skipped" in summary) == bool(skipped)
    if skipped:
        assert "slow end-to-end case: run with --slow" in output
        assert "slow cases:" not in output
    else:  # --slow: the summary adds up the slow cases and the rest
        match = re.search(
            r"slow cases: (\d+) tests, ([\d.]+) s of ([\d.]+) s; the quick set: ([\d.]+) s", output
        )
        assert match, output
        tests, slow, wall, quick = int(match[1]), float(match[2]), float(match[3]), float(match[4])
        assert tests == 2
        assert slow >= 0.6
        assert abs(wall - slow - quick) < 0.2
