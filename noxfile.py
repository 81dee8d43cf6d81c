"""Sessions: `nox -s tests` (the whole suite on jax, tensorflow and torch), `nox -s demo`, `nox -s lint`.

Every session installs kplug (and the plugin packages under plugins/) into its own
virtualenv with the pins in constraints.txt (torch is pinned to the CPU wheel).
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

BACKENDS = ["jax", "tensorflow", "torch"]
CONSTRAINTS = ("-c", "constraints.txt")
PLUGIN_PACKAGES = ["plugins/kplug-example", "plugins/kplug-vision"]


def install_kplug(session: nox.Session, backend: str, extras: str = "") -> None:
    """Install kplug with one backend (and the plugin packages) using the pinned versions."""
    wanted = ",".join(filter(None, [backend, extras]))
    session.install(*CONSTRAINTS, "-e", f".[{wanted}]")
    for package in PLUGIN_PACKAGES:
        session.install(*CONSTRAINTS, "-e", package)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Run the core and plugin test suites on one Keras backend."""
    install_kplug(session, backend, "test")
    session.run(
        "pytest",
        "tests",
        *[f"{package}/tests" for package in PLUGIN_PACKAGES],
        *session.posargs,
        env={"KERAS_BACKEND": backend},
    )


@nox.session
def demo(session: nox.Session) -> None:
    """Pretrain a small CNN on MNIST digits 0-4, transfer it to digits 5-9 with a new head."""
    backend = os.environ.get("KERAS_BACKEND", "jax")
    install_kplug(session, backend)
    session.run("python", "examples/digits/demo.py", *session.posargs, env={"KERAS_BACKEND": backend})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", "kplug", "tests", "plugins", "examples", "noxfile.py")
    session.run("ruff", "format", "--check", "kplug", "tests", "plugins", "examples", "noxfile.py")
