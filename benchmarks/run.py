"""Run kplug's benchmarks on every backend (one process each) and write BENCHMARKS.md and the raw JSON.

python benchmarks/run.py                 # the full run (what `nox -s bench` does)
python benchmarks/run.py --quick         # a tiny configuration, seconds per backend (smoke test)
python benchmarks/run.py --backends jax --repeats 7 --markdown /tmp/b.md --json /tmp/b.json
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from report import write_markdown  # noqa: E402

BACKENDS = ["jax", "tensorflow", "torch"]
QUICK = [
    "--repeats",
    "1",
    "--settings-repeats",
    "1",
    "--epochs",
    "2",
    "--mlp-size",
    "512",
    "--cnn-size",
    "128",
]
QUICK += ["--scaling-batches", "64,128", "--matmul-size", "256"]
QUICK += ["--cache-size", "64", "--cache-epochs", "2", "--cache-repeats", "1"]


def run_worker(backend: str, options: list[str], out: Path) -> dict[str, Any]:
    """One worker process on ``backend``; its JSON result."""
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": _pythonpath()}
    command = [sys.executable, str(HERE / "worker.py"), *options, "--out", str(out)]
    completed = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True, check=False)
    progress = [line for line in completed.stderr.splitlines() if line.startswith("[")]
    for line in progress:
        print(line, flush=True)
    if completed.returncode:
        raise RuntimeError(f"{backend} worker failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(out.read_text())


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join(filter(None, [str(ROOT), existing]))


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("keras", "jax", "tensorflow", "torch", "numpy", "kplug", "transformers"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing package is reported as missing
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
    }


def text_status() -> str | None:
    """None when the MiniLM text benchmarks can run, else why not."""
    if importlib.util.find_spec("kplug_text") is None:
        return "the kplug-text plugin (MiniLM backbone) is not installed in this environment"
    return None


def reuse(results: dict[str, Any], old: dict[str, Any], measured: set[tuple[str, str]]) -> None:
    """Fill the sections this run skips from an earlier run, recording which and from where.

    ``measured`` holds the (backend, section) pairs this run measures, or will: those are never
    copied, even before their backend's turn.
    """
    taken = []
    for backend, found in old["backends"].items():
        target = results["backends"].setdefault(backend, {})
        for section, value in found.items():
            if (
                section not in target
                and (backend, section.removesuffix("_command")) not in measured  # how a section was run
                and section
                not in (
                    "load_before",
                    "load_after",
                    "torch_threads",
                    "backend",
                )
            ):
                target[section] = value
                taken.append(f"{backend}/{section}")
    for backend, sides in old.get("rss", {}).items():
        if backend not in results["rss"] and (backend, "rss") not in measured:
            results["rss"][backend] = sides
            taken.append(f"{backend}/rss")
    results["reused"] = {"sections": taken, "command": old["command"], "started": old["started"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one repeat (harness check)")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats (default 5)")
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--json", default=str(HERE / "results.json"))
    parser.add_argument("--sections", default="peak,settings,overhead,pipeline,scaling,rss,text,cache")
    parser.add_argument(
        "--reuse",
        default=None,
        help="a results JSON whose sections this run does not measure are copied in (and marked so)",
    )
    args, extra = parser.parse_known_args(argv)
    options = (QUICK if args.quick else []) + extra
    if args.repeats is not None:
        options += ["--repeats", str(args.repeats)]
    sections = args.sections.split(",")
    worker_sections = ",".join(s for s in sections if s != "rss")
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    results: dict[str, Any] = {
        "command": command.strip(),
        "worker_options": options,
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "backends": {},
        "rss": {},
        "text": {"skipped": text_status()},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for backend in args.backends.split(","):
            print(f"== {backend}", flush=True)
            if worker_sections:
                out = Path(scratch) / f"{backend}.json"
                results["backends"][backend] = run_worker(
                    backend, [*options, "--sections", worker_sections], out
                )
            if "rss" in sections:
                sides = ["kplug", "plain"] + (["torch_loop"] if backend == "torch" else [])
                for side in sides:
                    out = Path(scratch) / f"{backend}-rss-{side}.json"
                    found = run_worker(backend, [*options, "--sections", "rss", "--rss-side", side], out)
                    results["rss"].setdefault(backend, {})[side] = found["rss"]
            save(results, args)  # after every backend, so a stopped run keeps what it measured
    results["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    save(results, args)
    print(f"wrote {args.markdown} and {args.json}")
    return 0


def save(results: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the JSON and the markdown of what has been measured so far."""
    complete = json.loads(json.dumps(results))  # reuse() must not change what this run measured
    if args.reuse:
        measured = {(b, s) for b in args.backends.split(",") for s in args.sections.split(",")}
        reuse(complete, json.loads(Path(args.reuse).read_text()), measured)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(complete, indent=1))
    write_markdown(complete, Path(args.markdown), json_path=Path(args.json))


if __name__ == "__main__":
    sys.exit(main())
