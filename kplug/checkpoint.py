"""Checkpoints written atomically at every epoch and stage boundary, and finding the one to resume.

A checkpoint is a directory ``checkpoints/epoch00005-stage01`` holding ``model.keras``
(weights and optimizer state) and ``state.json`` (where training stands). It is written
under a temporary name and renamed into place, so a checkpoint directory on disk is
always complete; a killed run leaves at most a ``.partial-*`` directory, which is ignored
and removed on resume.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from kplug.rundir import CHECKPOINT_DIR, MODEL_FILE

STATE_FILE = "state.json"
NAME = re.compile(r"^epoch(\d{5})-stage(\d{2})$")
KEEP = 2


@dataclass(frozen=True)
class TrainingState:
    """Where a run stands.

    Attributes:
        stage: index of the stage to continue (0-based; equal to the number of
            stages when every stage is done).
        stage_start: the overall epoch at which that stage started.
        epoch: epochs finished over all stages.
        stages: the report of every finished stage.
        init: the init-from-checkpoint report of the run.
    """

    stage: int
    stage_start: int
    epoch: int
    stages: list[dict[str, Any]] = field(default_factory=list)
    init: dict[str, Any] | None = None


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint directory."""

    path: Path
    state: TrainingState

    @property
    def model_file(self) -> Path:
        """The ``.keras`` file with weights and optimizer state."""
        return self.path / MODEL_FILE


def write_checkpoint(run_dir: Path, model: keras.Model, state: TrainingState) -> Checkpoint:
    """Write a checkpoint atomically and keep only the newest few."""
    root = run_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=root, prefix=".partial-"))
    try:
        model.save(partial / MODEL_FILE)
        (partial / STATE_FILE).write_text(json.dumps(state.__dict__, default=str))
        final = root / f"epoch{state.epoch:05d}-stage{state.stage:02d}"
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    for old in complete_checkpoints(root)[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return Checkpoint(final, state)


def complete_checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories in training order (partial ones excluded)."""
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.is_dir() and NAME.match(path.name)]
    return sorted(found, key=lambda path: tuple(int(n) for n in NAME.match(path.name).groups()))


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run, or ``None``; removes partial leftovers."""
    root = run_dir / CHECKPOINT_DIR
    if root.is_dir():
        for leftover in root.glob(".partial-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    for path in reversed(complete_checkpoints(root)):
        try:
            state = TrainingState(**json.loads((path / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if (path / MODEL_FILE).is_file():
            return Checkpoint(path, state)
    return None


class EpochCheckpoint(keras.callbacks.Callback):
    """Write a checkpoint at the end of every ``every``-th epoch of a stage."""

    def __init__(
        self,
        run_dir: Path,
        stage: int,
        stage_start: int,
        finished: list[dict[str, Any]],
        init: Any,
        every: int = 1,
    ):
        super().__init__()
        self.every = every
        self.run_dir = run_dir
        self.stage = stage
        self.stage_start = stage_start
        self.finished = finished
        self.init = init

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1 - self.stage_start) % self.every:
            return
        state = TrainingState(self.stage, self.stage_start, epoch + 1, list(self.finished), self.init)
        write_checkpoint(self.run_dir, self.model, state)
