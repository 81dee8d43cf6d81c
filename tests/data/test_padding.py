"""Padded last batches (data parallelism): zero-weight rows leave losses, gradients and metrics exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug.data.batches import TrainingBatches
from kplug.data.padding import EvaluationBatches, evaluation_batches, padding_note
from kplug.model.metrics import RealRows

TOLERANCE = 1e-6


def _data(rows: int = 106) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, 5)).astype("float32"), rng.integers(0, 3, rows)


def _model(padded: bool) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    metrics = {"weighted_metrics": [RealRows(accuracy)]} if padded else {"metrics": [accuracy]}
    model.compile(
        optimizer=keras.optimizers.SGD(0.5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **metrics,
    )
    return model


def test_the_last_evaluation_batch_is_padded_with_zero_weight_rows():
    x, y = _data(106)
    batches = EvaluationBatches(x, y, batch_size=32, multiple=4)
    assert batches.num_batches == 4
    last_x, last_y, weights = batches[3]
    assert len(last_x) == 12 and len(weights) == 12  # 10 real rows and 2 copies of the last
    assert np.array_equal(last_x[10:], np.repeat(x[-1:], 2, axis=0))
    assert not weights[10:].any() and np.allclose(weights[:10], 108 / 106)
    assert [len(batches[i][0]) for i in range(4)] == [32, 32, 32, 12]
    assert evaluation_batches(x, y, 32, 1) is None  # one replica: evaluate the arrays as they are


@pytest.mark.parametrize("rows", [106, 97])
def test_padded_evaluation_equals_the_unpadded_one(rows):
    x, y = _data(rows)
    plain = _model(padded=False).evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    padded_model = _model(padded=True)
    padded = padded_model.evaluate(EvaluationBatches(x, y, 32, 4), verbose=0, return_dict=True)
    assert padded["loss"] == pytest.approx(plain["loss"], abs=TOLERANCE)
    assert padded["accuracy"] == pytest.approx(plain["accuracy"], abs=TOLERANCE)


def test_a_padded_training_batch_updates_the_weights_as_its_real_rows_alone():
    x, y = _data(10)
    batches = TrainingBatches(x, y, batch_size=4, seed=0, multiple=4)
    assert batches.padded and TrainingBatches(x, y, batch_size=4, seed=0, multiple=2).padded is False
    padded_x, padded_y, weights = batches[2]  # 2 real rows padded to 4
    assert len(padded_x) == 4 and not weights[2:].any()
    plain, padded = _model(padded=False), _model(padded=True)
    plain_logs = plain.train_on_batch(padded_x[:2], padded_y[:2], return_dict=True)
    padded_logs = padded.train_on_batch(padded_x, padded_y, sample_weight=weights, return_dict=True)
    for before, after in zip(plain.get_weights(), padded.get_weights(), strict=True):
        np.testing.assert_allclose(before, after, atol=TOLERANCE)
    assert padded_logs["loss"] == pytest.approx(plain_logs["loss"], abs=TOLERANCE)
    assert padded_logs["accuracy"] == pytest.approx(plain_logs["accuracy"], abs=TOLERANCE)


def test_padding_keeps_every_batch_the_same_structure():
    """Once one batch is padded, every batch carries weights (tf.data needs one signature)."""
    x, y = _data(10)
    batches = TrainingBatches(x, y, batch_size=4, seed=0, multiple=4)
    assert all(len(batches[i]) == 3 for i in range(3))
    assert np.array_equal(batches[0][2], np.ones(4, dtype="float32"))
    assert len(TrainingBatches(x, y, batch_size=4, seed=0)[0]) == 2  # one replica: unchanged


def test_the_report_says_which_last_batch_was_padded():
    assert padding_note(106, 32, 4) == "last batch of 10 padded to 12 with 2 zero-weight rows (batch size 32)"
    assert padding_note(104, 32, 4) is None and padding_note(106, 32, 1) is None
