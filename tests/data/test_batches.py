"""kplug's training batches: seeded order per epoch, mid-epoch skip, exact gradient accumulation."""

from __future__ import annotations

import keras
import numpy as np
from conftest import blob_config

import kplug
from kplug.data.batches import TrainingBatches, epoch_order


def test_order_is_a_function_of_seed_and_epoch():
    assert np.array_equal(epoch_order(3, 1, 50), epoch_order(3, 1, 50))
    assert not np.array_equal(epoch_order(3, 1, 50), epoch_order(3, 2, 50))
    assert sorted(epoch_order(3, 1, 50)) == list(range(50))


def test_the_stream_is_a_pure_function_of_the_batch_index():
    x = np.arange(50)[:, None]
    batches = TrainingBatches(x, np.arange(50), batch_size=8, seed=0, first_epoch=2)
    assert batches.batches_per_epoch == 7 and batches.num_batches is None  # endless: fit gets steps
    seen = np.concatenate([batches[i][1] for i in range(7)])
    assert sorted(seen) == list(range(50))
    assert batches.position(7) == (3, 0)
    assert not np.array_equal(batches[7][1], batches[0][1])  # the next epoch has its own order
    assert np.array_equal(batches[3][1], batches[3][1])  # peeking changes nothing
    rest = TrainingBatches(x, np.arange(50), batch_size=8, seed=0, first_epoch=2, skip_batches=3)
    assert np.array_equal(rest[0][1], batches[3][1]) and np.array_equal(rest[4][1], batches[7][1])


def test_accumulation_windows_weigh_every_example_equally():
    x = np.zeros((50, 1))
    batches = TrainingBatches(x, np.zeros(50), batch_size=8, seed=0, accumulation=3)
    # 7 data batches -> 3 windows (24, 24, 2 examples); the last window is padded to 3 batches
    assert batches.batches_per_epoch == 9
    weights = [batches[i][2] for i in range(9)]
    assert [len(w) for w in weights] == [8, 8, 8, 8, 8, 8, 2, 2, 2]
    # Keras averages k batch means: weight * rows / batch rows / k summed over a window == 1 per example
    for window in range(3):
        total = sum(w.sum() / len(w) / 3 for w in weights[window * 3 : window * 3 + 3])
        rows = sum(len(w) for w in weights[window * 3 : window * 3 + 3] if w.any())
        assert np.isclose(total * rows, rows)  # mean over the window's examples
    assert not weights[7].any() and not weights[8].any()  # padding contributes nothing


def test_batch_transforms_see_a_reproducible_generator():
    calls = []

    def record(x, y, rng):
        calls.append(rng.integers(1 << 30))
        return x + 1, y

    batches = TrainingBatches(np.zeros((10, 2)), np.zeros(10), 4, seed=5, transforms=[record])
    first = batches[1][0]
    assert np.all(first == 1)
    batches[1]
    assert calls[0] == calls[1]


def test_batches_without_transforms_make_no_generator(monkeypatch):
    """A generator costs ~14 us per batch: only batch augmentations get one."""
    from kplug.data import batches as module

    made = []
    real = np.random.default_rng
    monkeypatch.setattr(module.np.random, "default_rng", lambda seed=None: made.append(seed) or real(seed))
    plain = TrainingBatches(np.zeros((10, 2)), np.zeros(10), 4, seed=5)
    plain[0], plain[1]
    assert [seed for seed in made if len(seed) == 3] == []  # [seed, epoch, batch]: per-batch generators
    augmented = TrainingBatches(
        np.zeros((10, 2)), np.zeros(10), 4, seed=5, transforms=[lambda x, y, rng: (x, y)]
    )
    augmented[1]
    assert [seed for seed in made if len(seed) == 3] == [[5, 0, 1]]


def _final_weights(x, y, batch_size, accumulation):
    config = blob_config(x, y)
    config["data"]["split"] = {"validation": 0.0}
    config["train"] = {
        "epochs": 2,
        "batch_size": batch_size,
        "verbose": 0,
        "optimizer": {"name": "adam", "gradient_accumulation_steps": accumulation},
    }
    config["output"] = {"dir": f"runs/acc{accumulation}", "checkpoint_every": 0}
    model = kplug.fit(config, plugins=kplug.load_plugins(entry_points=False)).model
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_accumulating_k_batches_of_n_equals_one_batch_of_n_times_k(blobs):
    x, y = blobs
    x, y = x[:203], y[:203]  # 203 = 8 windows of 24 + a short window of 11 (a short last batch too)
    accumulated = _final_weights(x, y, batch_size=8, accumulation=3)
    whole = _final_weights(x, y, batch_size=24, accumulation=None)
    for ours, theirs in zip(accumulated, whole, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=2e-5, rtol=1e-4)
