"""Run the ``kplug`` command line, and stop dead at one chosen point until the test kills the process.

Used by ``test_kill_resume.py``: ``python kill_driver.py train run.yaml`` behaves like
``kplug train run.yaml``, except that at the point named by the ``KPLUG_TEST_PAUSE``
environment variable (JSON) it writes the file ``marker`` and then waits forever, so
the test can send SIGKILL at exactly that point without sleeping to guess when:

- ``{"kind": "batch", "after": N}``: after the N-th training batch of this process;
- ``{"kind": "write", "nth": N, "phase": "after-model" | "before-rename"}``: inside the
  N-th checkpoint write, once ``model.keras`` is in the temporary directory, or once
  every file is there but the directory is not renamed into place yet;
- ``{"kind": "prune", "nth": N}``: halfway through deleting the N-th old checkpoint;
- ``{"kind": "interrupt", "after": N}``: after the N-th training batch, until a SIGINT
  (sent by the test) has been received; then training goes on as kplug decides.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
import types
from pathlib import Path

import keras

import kplug.train.checkpoint
import kplug.train.trainer
from kplug.cli.main import main

PAUSE = json.loads(os.environ["KPLUG_TEST_PAUSE"])
counts = {"batch": 0, "write": 0, "prune": 0, "renamed": 0}


def pause() -> None:
    Path(PAUSE["marker"]).write_text("paused")
    while True:
        time.sleep(60)


def reached(kind: str) -> bool:  # the N-th time a checkpoint write or delete comes here
    counts[kind] += 1
    return PAUSE["kind"] == kind and counts[kind] == PAUSE.get("nth", PAUSE.get("after"))


def wait_for_sigint() -> None:
    Path(PAUSE["marker"]).write_text("paused")
    handler = signal.getsignal(signal.SIGINT)  # kplug's InterruptRequest while training
    while not getattr(getattr(handler, "__self__", None), "requested", True):
        time.sleep(0.01)


class PauseAfterBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        counts["batch"] += 1
        if PAUSE.get("after") == counts["batch"] and PAUSE["kind"] == "batch":
            pause()
        if PAUSE.get("after") == counts["batch"] and PAUSE["kind"] == "interrupt":
            wait_for_sigint()


original_callbacks = kplug.train.trainer.Trainer._callbacks
kplug.train.trainer.Trainer._callbacks = lambda self, state, first: [
    *original_callbacks(self, state, first),
    PauseAfterBatch(),
]

original_rng_states = kplug.train.checkpoint.rng_states


def rng_states(model):  # called by write_checkpoint once model.keras is written
    if PAUSE["kind"] == "write" and PAUSE["phase"] == "after-model" and reached("write"):
        pause()
    return original_rng_states(model)


def replace(source, target):
    if Path(source).name.startswith(".partial-") and kplug.train.checkpoint.NAME.match(Path(target).name):
        if PAUSE["kind"] == "write" and PAUSE["phase"] == "before-rename" and reached("write"):
            pause()
        counts["renamed"] += 1
    return os.replace(source, target)


def rmtree(path, *args, **kwargs):
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    # an old checkpoint being deleted once a newer one is in place (not a leftover cleaned on resume)
    if path.parent.name == "checkpoints" and files and counts["renamed"] and reached("prune"):
        files[0].unlink()  # half deleted
        pause()
    return shutil.rmtree(path, *args, **kwargs)


kplug.train.checkpoint.rng_states = rng_states
kplug.train.checkpoint.os = types.SimpleNamespace(**{**vars(os), "replace": replace})
kplug.train.checkpoint.shutil = types.SimpleNamespace(**{**vars(shutil), "rmtree": rmtree})

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
