"""Ctrl-C during training: finish the current batch, write a checkpoint right there, then stop.

While a run trains, the first SIGINT only sets a flag (a second one stops at once, as
Python normally does). Before the next batch, ``InterruptCheckpointer`` writes a
checkpoint of where training stands, mid-epoch included, and raises
``TrainingInterrupted``; ``kplug train --resume RUN_DIR`` continues from it exactly as
from a step checkpoint (same data order, optimizer and RNG state). Only a single-process
run in the main thread takes over SIGINT; elsewhere Ctrl-C keeps Python's behaviour.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from kplug.train.checkpoint import Checkpointer, TrainingState, batches_done, latest_checkpoint
from kplug.train.rundir import CONFIG_FILE


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after writing a checkpoint.

    Attributes:
        run_dir: the run directory (``kplug train --resume run_dir`` continues it).
        checkpoint: the checkpoint directory to continue from, or ``None`` when nothing was trained yet.
        epoch: the overall epoch (1-based) in which training stopped.
        batch: batches of that epoch already trained.
    """

    def __init__(self, run_dir: Path, checkpoint: Path | None, epoch: int, batch: int) -> None:
        super().__init__(f"interrupted at epoch {epoch}, batch {batch}")
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.epoch = epoch
        self.batch = batch


class InterruptRequest:
    """A context that turns the first Ctrl-C into a request to stop at the next batch.

    Example::

        with InterruptRequest(enabled=True) as request:
            model.fit(..., callbacks=[InterruptCheckpointer(request, ...)])
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> InterruptRequest:
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nkplug: Ctrl-C: stopping after this batch and writing a checkpoint (press Ctrl-C again "
            "to stop at once, keeping only the checkpoints written so far).",
            file=sys.stderr,
            flush=True,
        )


class InterruptCheckpointer(Checkpointer):
    """When an interrupt is requested, checkpoint before the next batch and raise ``TrainingInterrupted``.

    Uses ``on_train_batch_begin`` (always called synchronously), so it neither makes
    Keras dispatch batch-end callbacks nor forces a device sync per batch.

    Args:
        request: the ``InterruptRequest`` whose flag is checked.
        run_dir, state, first_batch, accumulation, keep: as for ``Checkpointer``.
    """

    def __init__(
        self,
        request: InterruptRequest,
        run_dir: Path,
        state: TrainingState,
        first_batch: int = 0,
        accumulation: int = 1,
        keep: int = 2,
    ) -> None:
        super().__init__(run_dir, state, first_batch, 0, 0, accumulation, keep)
        self.request = request

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        pass  # epoch checkpoints are the Checkpointer's

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.request.requested:
            return
        done = batches_done(self.state, self.first_batch, self._epoch, batch)
        if done % self.accumulation:
            return  # finish the accumulation window: no half-accumulated gradient is saved
        if self._epoch == self.state.stage_start and done == 0:
            # nothing trained in this stage yet: the stage-end checkpoint before it is the place
            found = latest_checkpoint(self.run_dir)
            path = found.path if found is not None else None
        else:
            path = self._write_mid_epoch(done).path
        raise TrainingInterrupted(self.run_dir, path, self._epoch + 1, done)


def interrupt_message(run_dir: Path, error: KeyboardInterrupt, url: str | None = None) -> str:
    """What ``kplug train`` prints on Ctrl-C: where training stopped and the command that continues it
    (``url``: the run directory's URL when ``run_dir`` is its local copy)."""
    if not (run_dir / CONFIG_FILE).is_file():
        return "kplug: interrupted before the run directory was written; nothing to resume."
    resume = f"continue with: kplug train --resume {url or run_dir}"
    if isinstance(error, TrainingInterrupted) and error.checkpoint is not None:
        where = (
            f"epoch {error.epoch}, batch {error.batch}"
            if error.batch
            else f"the start of epoch {error.epoch}"
        )
        return (
            f"kplug: interrupted at {where}; checkpoint written: {error.checkpoint}. "
            f"Continue with: kplug train --resume {run_dir}"
        )
    found = latest_checkpoint(run_dir)
    if found is None:
        return (
            f"kplug: interrupted before the first checkpoint of {run_dir}; {resume} "
            f"(it starts from the beginning)"
        )
    return f"kplug: interrupted. The last checkpoint is {found.path}; {resume}"
