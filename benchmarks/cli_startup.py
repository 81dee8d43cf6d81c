"""How long the ``kplug`` command takes to answer, per backend (a measurement, not a timed test).

Times ``kplug --help``, ``kplug --version``, ``kplug plugins``, ``kplug doctor`` and a usage error
(``kplug trian``), each run ``--repeats`` times in a fresh process, on every backend given, and
prints a table of the median and the slowest run in seconds. The plugin index is built once
before timing (the first call after installing or upgrading a plugin package pays for it).

Usage::

    python benchmarks/cli_startup.py                       # the active KERAS_BACKEND, 5 repeats
    python benchmarks/cli_startup.py --backends jax torch tensorflow --repeats 3
    python benchmarks/cli_startup.py --kplug /path/to/venv/bin/kplug

Run with a backend's venv active (``kplug`` found on PATH); where each backend has its own venv,
run it once per venv with ``--backends`` naming that backend.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "plugins": ["plugins"],
    "doctor": ["doctor"],
    "usage error": ["trian"],
}


def time_command(kplug: str, args: list[str], backend: str) -> float:
    """Seconds one ``kplug ARGS`` takes in a fresh process on ``backend``."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    started = time.perf_counter()
    subprocess.run([kplug, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> int:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=[os.environ.get("KERAS_BACKEND", "tensorflow")])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kplug", default=shutil.which("kplug"), help="the kplug command (default: on PATH)")
    args = parser.parse_args()
    if not args.kplug:
        parser.error("no kplug command on PATH: activate a venv with kplug installed, or pass --kplug")
    print(f"{'backend':<11} {'command':<12} {'median s':>9} {'max s':>7}")
    for backend in args.backends:
        time_command(args.kplug, ["plugins"], backend)  # build the plugin index for this backend
        for name, command in COMMANDS.items():
            times = [time_command(args.kplug, command, backend) for _ in range(args.repeats)]
            print(f"{backend:<11} {name:<12} {statistics.median(times):>9.2f} {max(times):>7.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
