"""A probe times a few training steps of the real run on the current backend."""

from __future__ import annotations

import keras
import pytest
from conftest import blob_config

from kplug.config.load import load_config
from kplug.speed.probe import ProbeClock, ProbeDone, probe

BACKEND = keras.backend.backend()


def test_probe_measures_the_rate_of_a_tiny_mlp(blobs):
    x, y = blobs
    config = load_config(blob_config(x, y))  # 192 training rows, batch 32: 6 batches an epoch
    spe = 1 if BACKEND == "torch" else 2
    result = probe(config, {"jit_compile": False, "steps_per_execution": spe}, steps=8, warmup=2)
    assert result["backend"] == BACKEND
    assert result["settings"] == {"jit_compile": False, "steps_per_execution": spe}
    assert result["timed_batches"] >= 8
    assert result["samples_per_second"] > 0
    assert (result["train_examples"], result["batch_size"], result["stage_epochs"]) == (192, 32, [3])
    rate = result["samples_per_second"]
    assert result["estimate_seconds"] >= 192 * 3 / rate


def test_the_clock_counts_batches_not_calls_with_several_steps_per_execution():
    clock = ProbeClock(warmup=2, steps=4, max_seconds=60)
    clock.on_train_begin()
    clock.on_epoch_begin(0)
    clock.on_train_batch_end(1)  # Keras calls once per block of 2: batches 0-1, warm-up
    clock.on_train_batch_end(3)
    with pytest.raises(ProbeDone):
        clock.on_train_batch_end(5)
    assert (clock.seen, clock.timed, clock.block) == (6, 4, 2)
    clock.on_epoch_begin(1)  # the first block of an epoch follows validation: not timed
    with pytest.raises(ProbeDone):
        clock.on_train_batch_end(1)
    assert clock.timed == 4


def test_the_epochs_short_last_batch_is_not_timed():
    clock = ProbeClock(warmup=1, steps=3, max_seconds=60)
    clock.set_params({"steps": 3})  # batch 2 of each epoch is the short one
    clock.on_train_begin()
    clock.on_epoch_begin(0)
    clock.on_train_batch_end(0)
    clock.on_train_batch_end(1)
    clock.on_train_batch_end(2)
    assert (clock.seen, clock.timed) == (3, 1)
    clock.on_epoch_begin(1)  # traced by now: timed
    clock.on_train_batch_end(0)
    with pytest.raises(ProbeDone):
        clock.on_train_batch_end(2)
    assert (clock.seen, clock.timed) == (6, 3)
