"""``kplug.quiet_tensorflow()``: a script keeps TensorFlow's C++ start-up lines off its terminal, as the CLI does."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import kplug
from kplug.backend import quiet_logs

# TensorFlow / absl / CUDA C++ log lines: "W0000 00:00:...", "E0000 ... failed call to cuInit", absl's banner.
LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuInit|cuda_|oneDNN", re.MULTILINE)


def script_stderr(quiet: bool) -> str:
    """What a fresh interpreter that imports kplug, then TensorFlow, writes to stderr."""
    call = "kplug.quiet_tensorflow(); " if quiet else ""
    source = f"import kplug; {call}import tensorflow as tf; tf.config.list_physical_devices()"
    env = {key: value for key, value in os.environ.items() if key != quiet_logs.LOG_LEVEL}
    done = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


# two fresh interpreters that import TensorFlow whatever the backend: quick on tensorflow only
@pytest.mark.slow("jax", "torch")
def test_a_script_that_calls_it_prints_no_tensorflow_log_lines():
    assert LOG_LINE.search(script_stderr(quiet=False)), (
        "TensorFlow no longer logs at start-up: the case is moot"
    )
    assert not LOG_LINE.search(script_stderr(quiet=True))


def test_it_leaves_tensorflow_alone_when_the_user_set_the_log_level(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # as if not imported yet
    del sys.modules["tensorflow"]
    monkeypatch.setattr(quiet_logs, "USER_SET_LOG_LEVEL", True)
    assert kplug.quiet_tensorflow() is False
    assert not quiet_logs.installed()
    monkeypatch.setattr(quiet_logs, "USER_SET_LOG_LEVEL", False)
    assert kplug.quiet_tensorflow() is True
    assert quiet_logs.installed()
