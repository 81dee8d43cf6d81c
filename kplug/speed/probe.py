"""Time a few dozen training steps of a run config in this process (one backend, one setting).

The probe trains the real run as ``kplug train`` builds it (data, model, heads, batch
stream, optimizer, precision), on its first stage, with the given ``train.compile``
settings, in a temporary run directory without checkpoints, loggers or the config's
own callbacks. A callback times the batches after a warm-up and stops the run when it
has ``steps`` of them (or ``max_seconds`` of measuring): the time between batches of
the same epoch only, so validation and epoch ends are left out, and not the first epoch's
last block (its short batch has a new shape, traced again on jax and under XLA). Run as
``python -m kplug.speed.probe REQUEST RESULT`` by ``kplug.speed.run``: REQUEST is a
pickle of the arguments, RESULT gets JSON.
"""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras

from kplug.config.schema import CompileConfig, ComponentConfig, RunConfig
from kplug.errors import first_line
from kplug.plugin.manager import hookimpl, load_plugins

PROBE_CALLBACK = "kplug-bench-probe"


class ProbeDone(Exception):
    """Raised by the clock when it has measured enough: ends the probe's training run."""


class ProbeClock(keras.callbacks.Callback):
    """Times training batches after ``warmup`` of them; raises ``ProbeDone`` after ``steps`` timed ones."""

    def __init__(self, warmup: int, steps: int, max_seconds: float) -> None:
        super().__init__()
        self.warmup, self.steps, self.max_seconds = warmup, steps, max_seconds
        self.started = self.first_end = 0.0
        self.seen = self.timed = 0  # batches trained / timed
        self.seconds = 0.0  # time of the timed batches
        self.block = 1  # batches per callback call (steps_per_execution)
        self._last: tuple[float, int] | None = None
        self.epoch = 0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        self._last = None  # only intervals within one epoch: no validation, no epoch end

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        if not self.first_end:
            self.first_end = now
        batches = batch + 1 if self._last is None else batch - self._last[1]
        self.block = max(self.block, batches)
        # the first epoch's last block holds the short batch: a new shape, which jax and XLA trace
        short = self.epoch == 0 and batch + 1 == (self.params or {}).get("steps")
        if self._last is not None and self.seen >= self.warmup and not short:
            self.timed += batches
            self.seconds += now - self._last[0]
        self.seen += batches
        self._last = (now, batch)
        if self.timed >= self.steps or (self.timed and self.seconds >= self.max_seconds):
            raise ProbeDone


class _ProbePlugin:
    """Registers the probe's clock as a callback (the run's config names it)."""

    def __init__(self, clock: ProbeClock) -> None:
        self.clock = clock

    @hookimpl
    def kplug_register_callbacks(self, register: Any) -> None:
        register(PROBE_CALLBACK, lambda: self.clock)


def probe_config(config: RunConfig, settings: dict[str, Any], batches: int, run_dir: Path) -> RunConfig:
    """``config`` reduced to its first stage, long enough for ``batches``, with ``settings`` and no side outputs."""
    stage = config.train.resolved_stages()[0].model_copy(update={"epochs": batches})
    train = config.train.model_copy(
        update={"stages": [stage], "epochs": None, "compile": CompileConfig(**settings), "verbose": 0}
    )
    output = config.output.model_copy(
        update={
            "dir": str(run_dir),
            "overwrite": True,
            "checkpoint_every": 0,
            "checkpoint_every_steps": 0,
            "save_best": None,
        }
    )
    return config.model_copy(
        update={
            "train": train,
            "output": output,
            "loggers": [],
            "callbacks": [ComponentConfig(name=PROBE_CALLBACK)],
            "tune": None,
        }
    )


def probe(
    config: RunConfig, settings: dict[str, Any], steps: int = 30, warmup: int = 5, max_seconds: float = 30.0
) -> dict[str, Any]:
    """Train ``config`` briefly with compile ``settings`` on the current backend and time it.

    Returns:
        ``samples_per_second`` (steady training), ``compile_seconds`` (first call's extra time:
        tracing, XLA or torch.compile), ``train_examples``, ``stage_epochs`` and
        ``estimate_seconds``: the full run's training time, examples x epochs over all stages
        at this rate plus one compile per stage.
    """
    from kplug.train.trainer import Trainer

    block = int(settings.get("steps_per_execution", 1))
    warmup = max(warmup, 2 * block)  # the first blocks trace and compile
    clock = ProbeClock(warmup, max(steps, block), max_seconds)
    plugins = load_plugins([_ProbePlugin(clock)])
    stages = config.train.resolved_stages()
    with tempfile.TemporaryDirectory(prefix="kplug-bench-") as tmp:
        run = probe_config(config, settings, warmup + steps + 2 * block, Path(tmp) / "run")
        trainer = Trainer(run, plugins=plugins)
        try:
            trainer.fit()
        except ProbeDone:
            pass
        batch_size = trainer.stage_plans[0].batch_size
        train_examples = len(trainer.data.splits.train)
        model = trainer._fitted()
        used = {"jit_compile": bool(model.jit_compile), "steps_per_execution": int(model.steps_per_execution)}
    if not clock.timed:
        raise RuntimeError(
            f"no batch was timed in {clock.seen} batches (epochs of {clock.block} batch or less?)"
        )
    rate = clock.timed * batch_size / clock.seconds
    step = clock.seconds / clock.timed
    compile_seconds = max(0.0, clock.first_end - clock.started - step * clock.block)
    epochs = [stage.epochs or 1 for stage in stages]
    return {
        "backend": keras.backend.backend(),
        "settings": used,
        "samples_per_second": rate,
        "compile_seconds": compile_seconds,
        "timed_batches": clock.timed,
        "batch_size": batch_size,
        "train_examples": train_examples,
        "stage_epochs": epochs,
        "estimate_seconds": train_examples * sum(epochs) / rate + compile_seconds * len(epochs),
    }


def main(argv: list[str]) -> int:
    """Child-process entry: read the pickled request, write the JSON result (or the one-line error)."""
    request_path, result_path = argv
    try:
        request = pickle.loads(Path(request_path).read_bytes())
        result = probe(**request)
    except Exception as error:  # a failed probe is one line in the parent's table, not a traceback
        result = {"error": f"{type(error).__name__}: {first_line(error)}"}
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
