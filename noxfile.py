"""Sessions: `nox -s tests` (the whole suite on jax, tensorflow and torch; `-- --slow` adds the
slow end-to-end cases CI runs), `nox -s demo` (MiniLM on SST-2: does pretraining pay?),
`nox -s demo-digits` (staged transfer of a small CNN), `nox -s lint`, `nox -s docs` (the MkDocs
site, warnings as errors), `nox -s bench` (benchmarks; not run by default).

Every session installs kplug (and the plugin packages under plugins/) into its own
virtualenv with the pins in constraints.txt (torch is pinned to the CPU wheel). `tests` installs
all three backends into one virtualenv and runs the suites once per backend.
"""

from __future__ import annotations

import os
import time

import nox
import nox.command

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

BACKENDS = ["jax", "tensorflow", "torch"]
CONSTRAINTS = ("-c", "constraints.txt")
PLUGIN_PACKAGES = [
    "plugins/kplug-example",
    "plugins/kplug-mlflow",
    "docs/tutorial/kplug-jsonl",
    "plugins/kplug-precision",
    "plugins/kplug-compress",
    "plugins/kplug-distribute",
    "plugins/kplug-ray",
    "plugins/kplug-text",
    "plugins/kplug-vision",
]
# Suites whose quick set takes a minute or more: they run on pytest-xdist workers. A worker costs
# about 8 CPU-seconds to start (Keras, the active backend and the suite's collection).
PARALLEL_SUITES = {"tests", *[f"plugins/kplug-{name}/tests" for name in ("compress", "text", "vision")]}
# Small suites whose conftest only re-exports kplug.testing's hooks (none imports helpers from
# `conftest`): they share one pytest process, which saves a start-up (keras and a backend) each.
SHARED_SUITES = [
    f"{package}/tests"
    for package in (
        "plugins/kplug-example",
        "plugins/kplug-mlflow",
        "docs/tutorial/kplug-jsonl",
        "plugins/kplug-precision",
    )
]
# Larger suites whose tests import no helper from `conftest` (each has its own conftest, and a session
# imports them all under that name): they share one pytest-xdist call, which saves a controller's and
# its workers' start-up (about 15 s) per call.
GROUPED_SUITES = ["plugins/kplug-compress/tests", "plugins/kplug-text/tests"]
# Suites run without a JAX compilation cache (see jax_compilation_cache).
UNCACHED_SUITES = {"plugins/kplug-vision/tests"}
# Optional extras a plugin package's tests need (kplug export: tensorflow, tf2onnx, onnxruntime).
PLUGIN_EXTRAS = {"plugins/kplug-compress": "export", "plugins/kplug-text": "test"}


def install_kplug(
    session: nox.Session, backend: str, extras: str = "", plugin_extras: dict[str, str] | None = None
) -> None:
    """Install kplug with one backend (and the plugin packages) using the pinned versions.

    ``plugin_extras`` replaces PLUGIN_EXTRAS (a plugin package's optional extras) when given.
    """
    wanted = ",".join(filter(None, [backend, extras]))
    editables = [f".[{wanted}]"]
    for package in PLUGIN_PACKAGES:
        optional = (PLUGIN_EXTRAS if plugin_extras is None else plugin_extras).get(package)
        editables.append(f"{package}[{optional}]" if optional else package)
    install_with_retries(session, *CONSTRAINTS, *[arg for path in editables for arg in ("-e", path)])


def install_with_retries(session: nox.Session, *args: str, attempts: int = 3) -> None:
    """``pip install ARGS``, tried again after a pause when it fails.

    Large wheels (tensorflow is 572 MB) come from the network; one interrupted download
    must not fail the run.
    """
    for attempt in range(1, attempts + 1):
        try:
            session.install(*args, env={"PIP_RESUME_RETRIES": "20"})
            return
        except nox.command.CommandFailed:
            if attempt == attempts:
                raise
            pause = 30 * attempt
            session.warn(f"pip install failed (attempt {attempt} of {attempts}); trying again in {pause} s")
            time.sleep(pause)


def selected_backends(session: nox.Session) -> list[str]:
    """The backends `nox -s tests` runs on: all three, or those KPLUG_TEST_BACKENDS names (torch,jax)."""
    value = os.environ.get("KPLUG_TEST_BACKENDS", "").strip()
    if not value:
        return BACKENDS
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        session.error(
            f"KPLUG_TEST_BACKENDS={value!r}: unknown backend {', '.join(unknown) or '(none given)'}; "
            f"allowed: a comma-separated list of {', '.join(BACKENDS)}"
        )
    return names


@nox.session
def tests(session: nox.Session) -> None:
    """Run the core and plugin test suites on each Keras backend, from one install of all three.

    The quick set of the larger suites runs on two pytest-xdist workers (KPLUG_TEST_WORKERS=N
    changes it, 0 runs it in-process). `nox -s tests -- --slow` then also runs the slow end-to-end
    cases (CI does), on the same workers (the process-group suites' in one process); other
    arguments after `--` go to every pytest call. KPLUG_TEST_BACKENDS=torch,jax limits the backends.
    """
    backends = selected_backends(session)
    workers = test_workers(session)
    # all three backends in one venv (the pins allow it); tensorboard, tune and docs: so the
    # logger, kplug tune and docs-site tests run on every backend
    install_kplug(session, ",".join(BACKENDS), "test,tensorboard,tune,docs")
    slow = "--slow" in session.posargs
    others = [arg for arg in session.posargs if arg != "--slow"]
    # one pytest per package per backend, or per group (SHARED_SUITES, GROUPED_SUITES) whose tests import no
    # helper from `conftest`: each suite has its own conftest, and one session imports them all under that name
    for backend in backends:
        for suite in test_runs():
            env = {"KERAS_BACKEND": backend, **jax_compilation_cache(session, suite[0])}
            # the larger suites on `workers` processes, a test file at a time each (module fixtures are
            # built once), the quick set and then the slow cases; the process-group suites (distribute,
            # ray: each case starts several processes that need the cores) and the small ones in one
            parallel = []
            if suite[0] in PARALLEL_SUITES and workers:
                parallel = ["-n", str(workers), "--dist", "loadfile"]
                env.update(compute_threads(os.cpu_count() or 1, workers))
            # --durations: the log names the slowest cases, the ones to shorten or mark slow next
            session.run("pytest", *suite, *parallel, "--durations=30", *others, env=env)
            if slow:
                # exit code 5: the suite has no slow case
                slow_cases = ["--only-slow", "--durations=5"]  # the cases slow on this backend
                session.run("pytest", *suite, *parallel, *slow_cases, *others, env=env, success_codes=[0, 5])


def jax_compilation_cache(session: nox.Session, suite: str) -> dict[str, str]:
    """Environment that keeps JAX's compiled programs in one on-disk cache for every test process.

    Most cases build the same few small models, and XLA compiles each step function again in every
    test and process: with the cache a case reuses what an earlier one compiled (the jax core quick set
    took 242 s with it against 378 s without, run back to back). Keyed by the program, the compile
    options and the jax version, so a hit is the executable XLA would have built. The size limit
    turns on JAX's file lock, which the xdist workers and the CLI subprocesses writing at once need.

    UNCACHED_SUITES run without any cache (kplug's own included): their models are each compiled
    once, and storing them cost more than it saved (vision in CI: 87 s quick, 160 s slow, against
    61 and 107 s without).
    """
    if suite in UNCACHED_SUITES:
        return {"KPLUG_JAX_COMPILATION_CACHE": "0"}
    return {
        "JAX_COMPILATION_CACHE_DIR": os.path.join(session.virtualenv.location, "jax-compilation-cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "JAX_COMPILATION_CACHE_MAX_SIZE": str(2**30),
    }


def compute_threads(cores: int, processes: int) -> dict[str, str]:
    """Environment giving each of ``processes`` test processes ``cores // processes`` compute threads.

    torch and TensorFlow start a compute thread per core in each process, and idle threads spin before
    they sleep, so two pytest-xdist workers on two cores ran four busy threads. One thread per worker,
    measured on the core quick set (2 workers, 2 cores, back to back): torch 212 s -> 140 s, tensorflow
    278 -> 264 s. XLA is left alone: on jax it made no difference (236 against 231 s), and XLA_FLAGS
    are part of the compilation cache's key. Processes a test starts (the CLI) inherit it.
    """
    threads = str(max(1, cores // max(1, processes)))
    return {"OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}


def test_runs() -> list[list[str]]:
    """The suites each backend's pytest calls run: one a call, SHARED_SUITES together in one and
    GROUPED_SUITES together in another."""
    suites = ["tests", *[f"{package}/tests" for package in PLUGIN_PACKAGES]]
    runs = [[suite] for suite in suites if suite not in (*SHARED_SUITES, *GROUPED_SUITES)]
    return [*runs[:1], SHARED_SUITES, GROUPED_SUITES, *runs[1:]]


def test_workers(session: nox.Session) -> int:
    """How many pytest-xdist processes run the quick set: KPLUG_TEST_WORKERS, 2 by default (0: in-process)."""
    value = os.environ.get("KPLUG_TEST_WORKERS", "2").strip()
    if not value.isdigit():
        session.error(
            f"KPLUG_TEST_WORKERS={value!r}: expected a whole number of processes (0 runs in-process)"
        )
    return int(value)


@nox.session
def demo(session: nox.Session) -> None:
    """Does pretraining pay? SST-2 sentiment from 100-1,000 labels: MiniLM frozen, fine-tuned, from scratch.

    JAX by default: with kplug's compilation cache its 18 trainings took 6.5 minutes here, against
    11.0 on TensorFlow, back to back. KERAS_BACKEND=tensorflow|torch picks another. Arguments after
    `--` go to the demo script.
    """
    backend = os.environ.get("KERAS_BACKEND", "jax")
    install_kplug(session, backend, plugin_extras={"plugins/kplug-text": "minilm"})
    session.run("python", "examples/sentiment/demo.py", *session.posargs, env={"KERAS_BACKEND": backend})


@nox.session(name="demo-digits")
def demo_digits(session: nox.Session) -> None:
    """Pretrain a small CNN on MNIST digits 0-4, transfer it to digits 5-9 with a new head."""
    backend = os.environ.get("KERAS_BACKEND", "jax")
    install_kplug(session, backend)
    session.run("python", "examples/digits/demo.py", *session.posargs, env={"KERAS_BACKEND": backend})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with MkDocs, warnings as errors."""
    install_with_retries(session, *CONSTRAINTS, "-e", ".[jax,docs]")
    session.run(
        "mkdocs",
        "build",
        "--strict",
        *session.posargs,
        env={"KERAS_BACKEND": "jax", "NO_MKDOCS_2_WARNING": "1"},
    )


LINT_PATHS = (
    "kplug",
    "tests",
    "plugins",
    "examples",
    "benchmarks",
    "docs/hooks",
    "docs/tutorial",
    "noxfile.py",
)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks on jax, tensorflow and torch: writes BENCHMARKS.md and benchmarks/results.json.

    Not a default session (it takes minutes). Options go to benchmarks/run.py, e.g.
    `nox -s bench -- --quick` or `nox -s bench -- --backends jax --repeats 7`.
    """
    install_kplug(session, ",".join(BACKENDS))
    session.run("python", "benchmarks/run.py", *session.posargs)
