"""What a run prints while it trains: one line per stage, then one counter per epoch.

Before each stage kplug prints what it trains, its batch size and its rates::

    stage 2 of 2: trains all (12,421 trainable params), 12 epochs, batch size 8, learning rate 0.003 (adamw)

and each epoch counts within the stage and over the run (``epoch 3/12 (run 9/18)``).
On a terminal Keras' own progress bar shows the epoch's batches under that counter;
when the output is a file or a pipe each epoch is one plain line with its metrics and
time, free of the carriage returns and ANSI codes a progress bar writes.
``train.verbose: 0`` prints nothing, ``2`` plain lines even on a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Literal

import keras

from kplug.train.stage_plan import StagePlan

Mode = Literal["quiet", "bar", "lines"]


def progress_mode(verbose: Literal["auto", 0, 1, 2], stream: IO[str] | None = None) -> Mode:
    """How epochs are shown: nothing, Keras' progress bar (a terminal) or plain lines.

    Args:
        verbose: ``train.verbose``.
        stream: where the output goes (default ``sys.stdout``).
    """
    if verbose == 0:
        return "quiet"
    stream = sys.stdout if stream is None else stream
    is_terminal = bool(getattr(stream, "isatty", lambda: False)())
    return "bar" if verbose in ("auto", 1) and is_terminal else "lines"


def _trains(plan: StagePlan) -> str:
    chosen = plan.trainable
    if chosen.train_last_blocks is not None:
        what = f"the backbone's last {chosen.train_last_blocks} block(s) and the heads"
    elif chosen.trainable == "all":
        what = "all"
    else:
        what = ", ".join(chosen.trainable)
    if chosen.frozen:
        what += f" except {', '.join(chosen.frozen)}"
    return what


def _rate(value: float) -> str:
    return f"{value:.6g}"


def stage_line(
    plan: StagePlan, stages: int, trainable_params: int, rates: dict[str, float] | None = None
) -> str:
    """The line printed before a stage starts.

    Args:
        plan: the stage's resolved settings.
        stages: how many stages the run has.
        trainable_params: parameters the stage trains.
        rates: learning rate per layer group when per-layer rates differ (``None``: one rate).

    Example::

        stage 1 of 2: trains heads/* (645 trainable params), 6 epochs, batch size 8, learning rate 0.01 (adamw)
    """
    batch = f"batch size {plan.batch_size}"
    if plan.accumulation > 1:
        batch += f" (x{plan.accumulation} accumulated: {plan.batch_size * plan.accumulation} per update)"
    rate = f"learning rate {_rate(plan.learning_rate)} ({plan.optimizer.name}"
    if plan.schedule.name != "constant":
        rate += f", {plan.schedule.name} schedule"
    rate += ")"
    if rates:
        low, high = min(rates.values()), max(rates.values())
        rate += f", per-layer rates {_rate(low)}..{_rate(high)}"
    epochs = f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''}"
    return (
        f"stage {plan.index + 1} of {stages}: trains {_trains(plan)} "
        f"({trainable_params:,} trainable params), {epochs}, {batch}, {rate}"
    )


class EpochCounter:
    """Turns Keras' run-wide epoch index into ``epoch 3/6 (run 9/18)``.

    Args:
        plan: the stage being trained.
        stage_start: the run-wide epoch at which the stage started (0-based).
        total_epochs: epochs of every stage together.
    """

    def __init__(self, plan: StagePlan, stage_start: int, total_epochs: int) -> None:
        self.plan = plan
        self.stage_start = stage_start
        self.total_epochs = total_epochs

    def label(self, epoch: int) -> str:
        """The counter of run-wide epoch ``epoch`` (0-based, as Keras passes it)."""
        within = epoch - self.stage_start + 1
        return f"epoch {within}/{self.plan.epochs} (run {epoch + 1}/{self.total_epochs})"


def _metrics(logs: dict[str, Any] | None) -> str:
    shown = []
    for name, value in (logs or {}).items():
        if name == "learning_rate":
            continue
        try:
            shown.append(f"{name} {float(value):.4f}")
        except (TypeError, ValueError):
            continue
    return ", ".join(shown)


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch: its counters, metrics and seconds (fit runs with ``verbose=0``)."""

    def __init__(self, counter: EpochCounter, stream: IO[str] | None = None) -> None:
        super().__init__()
        self.counter = counter
        self.stream = stream
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self._started
        metrics = _metrics(logs)
        line = f"{self.counter.label(epoch)}: {metrics}{', ' if metrics else ''}{seconds:.1f} s"
        print(line, file=self.stream if self.stream is not None else sys.stdout, flush=True)


class EpochBar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, headed by kplug's counters instead of Keras' ``Epoch 9/18``."""

    def __init__(self, counter: EpochCounter) -> None:
        super().__init__()
        self.counter = counter

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose:
            print(self.counter.label(epoch), flush=True)


def epoch_progress(mode: Mode, counter: EpochCounter) -> list[keras.callbacks.Callback]:
    """The callbacks that show epochs in ``mode``."""
    if mode == "bar":
        return [EpochBar(counter)]
    if mode == "lines":
        return [EpochLines(counter)]
    return []


def fit_verbose(mode: Mode) -> int:
    """The ``verbose`` to give ``Model.fit``: 1 only under Keras' progress bar (kplug prints the rest)."""
    return 1 if mode == "bar" else 0
