"""kplug.backend.tf_batches: the batch stream's batches, in its order, as a tf.data pipeline."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kplug.data.batches import TrainingBatches

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the tf.data input path of the tensorflow backend"
)


def _rows(size: int) -> tuple[dict, dict, np.ndarray]:
    rng = np.random.default_rng(0)
    x = {"pixels": rng.normal(size=(size, 2, 3)).astype("float32"), "ids": np.arange(size)}
    y = {"label": rng.integers(0, 4, size), "score": rng.normal(size=size)}
    return x, y, rng.uniform(size=size).astype("float32")


def _same(ours, theirs, where: str) -> None:
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for key in theirs:
            _same(ours[key], theirs[key], f"{where}[{key}]")
        return
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), theirs, err_msg=where)


@pytest.mark.parametrize("size", [50, 48], ids=["short-last-batch", "whole-batches"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    ("first_epoch", "skip"), [(0, 0), (2, 3), (1, 5)], ids=["start", "resume", "last-batch"]
)
def test_the_pipeline_yields_the_batch_streams_batches_in_its_order(size, weighted, first_epoch, skip):
    from kplug.backend.tf_batches import array_batches

    x, y, weights = _rows(size)
    weights = weights if weighted else None
    stream = TrainingBatches(x, y, 8, seed=7, first_epoch=first_epoch, skip_batches=skip, weights=weights)
    pipeline = array_batches(x, y, 8, seed=7, first_epoch=first_epoch, skip_batches=skip, weights=weights)
    count = 3 * stream.batches_per_epoch  # across two epoch boundaries
    seen = 0
    for index, batch in enumerate(pipeline.take(count)):
        expected = stream[index]
        assert len(batch) == len(expected) == (3 if weighted else 2)
        for part, (ours, theirs) in enumerate(zip(batch, expected, strict=True)):
            _same(ours, theirs, f"batch {index}, part {part}")
        seen += 1
    assert seen == count
