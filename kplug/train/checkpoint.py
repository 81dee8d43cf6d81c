"""Checkpoints written atomically at every epoch and stage boundary, and finding the one to resume.

A checkpoint is a directory ``checkpoints/epoch00005-batch000000-stage01`` (after epoch 5,
in stage 1: stages count from 1 as in metrics.csv; ``...-stage01-end`` marks the end of
stage 1, written once its last epoch is done) holding
``model.keras`` (weights and optimizer state), ``rng.npz`` (the random-generator states
of dropout and augmentation layers, which Keras does not save) and ``state.json``
(where training stands, down to the batch within an epoch). It is written
under a temporary name and renamed into place, so a checkpoint directory on disk is
always complete; a killed run leaves at most a ``.partial-*`` directory, which is ignored
and removed on resume. Run directories written before stages counted from 1 (``stage00``
for the first stage) still resume: the position is read from ``state.json``, and names of
either kind sort in training order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kplug.backend.torch_rng import set_torch_rng_state, torch_rng_state
from kplug.errors import CheckpointError
from kplug.train.rundir import CHECKPOINT_DIR, MODEL_FILE, new_directory

STATE_FILE = "state.json"
RNG_FILE = "rng.npz"
NAME = re.compile(r"^epoch(\d{5})-batch(\d{6})-stage(\d{2})(-end)?$")
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
        batch: batches of epoch ``epoch`` already trained (0 at an epoch boundary).
        step_offset: the optimizer step at which the stage began (its schedule counts from there).
    """

    stage: int
    stage_start: int
    epoch: int
    stages: list[dict[str, Any]] = field(default_factory=list)
    init: dict[str, Any] | None = None
    batch: int = 0
    step_offset: int = 0


@dataclass(frozen=True)
class Checkpoint:
    """A complete checkpoint directory."""

    path: Path
    state: TrainingState

    @property
    def model_file(self) -> Path:
        """The ``.keras`` file with weights and optimizer state."""
        return self.path / MODEL_FILE

    def restore_rng(self, model: keras.Model) -> None:
        """Put the model's random-generator states back (dropout, noise and augmentation layers)."""
        path = self.path / RNG_FILE
        if not path.is_file():
            return
        try:
            with np.load(path, allow_pickle=False) as saved:
                states = [saved[name] for name in sorted(saved.files) if name.startswith("state")]
                backend_state = saved[TORCH_RNG] if TORCH_RNG in saved.files else None
        except (ValueError, OSError, zipfile.BadZipFile) as error:  # a pickle is refused, never loaded
            raise CheckpointError(
                f"{path}: not an archive of plain arrays ({error}); kplug never loads pickles."
            ) from None
        variables = rng_variables(model)
        if len(states) == len(variables):
            for variable, value in zip(variables, states, strict=True):
                variable.assign(value)
        if backend_state is not None and keras.backend.backend() == "torch":
            set_torch_rng_state(backend_state)

    def metric_states(self) -> list[np.ndarray]:
        """The running sums of the training metrics of a checkpoint written mid-epoch ([] otherwise)."""
        path = self.path / RNG_FILE
        if not path.is_file():
            return []
        with np.load(path, allow_pickle=False) as saved:
            return [saved[name] for name in sorted(saved.files) if name.startswith(METRIC_PREFIX)]


TORCH_RNG = "torch_cpu_rng"
METRIC_PREFIX = "metric"


def sync_model_state(model: keras.Model) -> None:
    """Mid-epoch, the jax trainer holds the current values outside the model: write them back."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


def batches_done(state: TrainingState, first_batch: int, epoch: int, batches: int) -> int:
    """Batches of epoch ``epoch`` trained so far: ``batches`` in this ``fit`` call, plus those
    trained before a mid-epoch resume when ``epoch`` is the one it resumed in."""
    return batches + (first_batch if epoch == state.epoch else 0)


class RestoreMetrics(keras.callbacks.Callback):
    """Add back the training metrics' running sums of an epoch resumed mid-way.

    Keras resets the metrics when an epoch begins (and on tensorflow builds them only
    in the first train step), so after the first batch of the resumed part this adds
    the sums saved with the checkpoint: metric states are accumulators (totals,
    counts, confusion counts) and IEEE addition commutes, so the epoch's logged means
    are bit for bit those of an uninterrupted run. Used only for the rest of one epoch.
    """

    def __init__(self, values: list[np.ndarray]) -> None:
        super().__init__()
        self.values = values

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.values:
            return
        sync_model_state(self.model)  # re-read by the jax trainer after this callback
        variables = self.model.metrics_variables
        if len(variables) == len(self.values):
            for variable, value in zip(variables, self.values, strict=True):
                variable.assign(variable + keras.ops.convert_to_tensor(value, variable.dtype))
        self.values = []


def seed_layer_generators(model: keras.Model, seed: int) -> None:
    """Give unseeded random layers (Dropout, ...) a seed derived from the run's seed.

    On torch, Keras draws the masks of an unseeded Dropout from torch's global
    generator, which torch's DataLoader also advances whenever an iterator is made, so
    a resumed run would draw different masks. A seeded generator keeps its state in a
    layer variable, which checkpoints save. (Keras 3 has no public setter for this.)
    """
    if keras.backend.backend() != "torch":
        return
    for index, layer in enumerate(model._flatten_layers(include_self=False)):
        generator = getattr(layer, "seed_generator", None)
        if (
            isinstance(generator, keras.random.SeedGenerator)
            and getattr(generator, "_initial_seed", 0) is None
        ):
            generator._initial_seed = (seed * 1_000_003 + index) % (2**31 - 1)


def rng_states(model: keras.Model) -> dict[str, np.ndarray]:
    """Every random state training draws from, as arrays.

    Layers' seed generators, plus torch's global generator: Keras' torch backend
    draws unseeded dropout masks from it.
    """
    states = {f"state{i:04d}": keras.ops.convert_to_numpy(v) for i, v in enumerate(rng_variables(model))}
    if keras.backend.backend() == "torch":
        states[TORCH_RNG] = torch_rng_state()
    return states


def rng_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's random-generator state variables, in a stable order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


def write_checkpoint(run_dir: Path, model: keras.Model, state: TrainingState, keep: int = KEEP) -> Checkpoint:
    """Write a checkpoint atomically and keep only the newest ``keep``."""
    root = run_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    partial = new_directory(root, ".partial-")
    try:
        model.save(partial / MODEL_FILE)
        states = rng_states(model)
        if state.batch:  # mid-epoch: the epoch's running metric sums, for its logged means
            states.update(
                {
                    f"{METRIC_PREFIX}{i:04d}": keras.ops.convert_to_numpy(v)
                    for i, v in enumerate(model.metrics_variables)
                }
            )
        np.savez(partial / RNG_FILE, **states)
        (partial / STATE_FILE).write_text(json.dumps(state.__dict__, default=str))
        final = root / checkpoint_name(state)
        if final.exists():
            _remove_checkpoint(final)
        os.replace(partial, final)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    for old in complete_checkpoints(root)[:-keep]:
        _remove_checkpoint(old)
    return Checkpoint(final, state)


def checkpoint_name(state: TrainingState) -> str:
    """The directory name of a checkpoint: ``epoch00005-batch000000-stage01`` (after epoch 5, in
    stage 1, counted from 1 as in metrics.csv), or ``epoch00006-batch000000-stage01-end`` once
    stage 1's last epoch (the 6th of the run) is done."""
    position = f"epoch{state.epoch:05d}-batch{state.batch:06d}"
    # nothing of stage `state.stage` trained yet: the stage before it has ended
    if state.stage > 0 and state.batch == 0 and state.epoch == state.stage_start:
        return f"{position}-stage{state.stage:02d}-end"
    return f"{position}-stage{state.stage + 1:02d}"


def _order(path: Path) -> tuple[int, ...]:
    epoch, batch, stage, end = NAME.match(path.name).groups()
    return int(epoch), int(batch), int(stage), int(end is not None)


def _remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint directory without ever leaving a half-deleted one under a checkpoint name.

    The directory is first renamed to a ``.partial-*`` name (atomic), so a run killed while
    deleting leaves only a leftover that ``latest_checkpoint`` removes.
    """
    doomed = new_directory(path.parent, ".partial-")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def complete_checkpoints(root: Path) -> list[Path]:
    """Checkpoint directories in training order (partial ones excluded)."""
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.is_dir() and NAME.match(path.name)]
    return sorted(found, key=_order)


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


class Checkpointer(keras.callbacks.Callback):
    """Write a checkpoint every ``every_epochs`` epochs and every ``every_steps`` batches of a stage.

    Args:
        run_dir: the run directory.
        state: where the stage started (its index, first epoch, finished stages, ...).
        first_batch: batches of the first epoch trained before this ``fit`` (a mid-epoch resume).
        every_epochs: epoch interval (0: none).
        every_steps: batch interval (0: none).
        accumulation: micro-batches per optimizer update; a step checkpoint is written only
            at a window boundary, where no gradient is half accumulated.
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(
        self,
        run_dir: Path,
        state: TrainingState,
        first_batch: int = 0,
        every_epochs: int = 1,
        every_steps: int = 0,
        accumulation: int = 1,
        keep: int = KEEP,
    ) -> None:
        super().__init__()
        self.keep = keep
        self.run_dir = run_dir
        self.state = state
        self.first_batch = first_batch
        self.every_epochs = every_epochs
        self.every_steps = every_steps
        self.accumulation = accumulation
        self._epoch = state.epoch

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.every_epochs or (epoch + 1 - self.state.stage_start) % self.every_epochs:
            return
        write_checkpoint(self.run_dir, self.model, self._state(epoch + 1, 0), self.keep)

    def _write_mid_epoch(self, done: int) -> Checkpoint:
        """Checkpoint the current epoch after its first ``done`` batches."""
        sync_model_state(self.model)
        return write_checkpoint(self.run_dir, self.model, self._state(self._epoch, done), self.keep)

    def _state(self, epoch: int, batch: int) -> TrainingState:
        return TrainingState(
            self.state.stage,
            self.state.stage_start,
            epoch,
            list(self.state.stages),
            self.state.init,
            batch,
            self.state.step_offset,
        )


class StepCheckpointer(Checkpointer):
    """A ``Checkpointer`` that also writes every ``every_steps`` batches (a separate class: a
    callback with batch hooks makes Keras dispatch every batch's callbacks)."""

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        done = batches_done(self.state, self.first_batch, self._epoch, batch + 1)
        last = batch + 1 == (self.params or {}).get("steps")  # the epoch checkpoint covers it
        if not self.every_steps or last or done % self.every_steps or done % self.accumulation:
            return
        self._write_mid_epoch(done)
