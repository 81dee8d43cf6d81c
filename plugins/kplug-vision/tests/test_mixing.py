"""MixUp and CutMix mix images and one-hot labels consistently; labels stay distributions."""

from __future__ import annotations

import kplug
import numpy as np
import pytest

from kplug_vision.mixing import make_cutmix, make_mixup


def batch(rows: int = 16, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Images whose pixels all equal the example's index, and one-hot labels."""
    x = np.broadcast_to(np.arange(rows, dtype="float32")[:, None, None, None], (rows, 8, 8, 1)).copy()
    y = np.eye(classes, dtype="float32")[np.arange(rows) % classes]
    return x, y


@pytest.mark.parametrize("make", [make_mixup, make_cutmix])
def test_labels_sum_to_one_and_match_the_pixels(make) -> None:
    x, y = batch()
    mixed_x, mixed_y = make(alpha=1.0)(x, y, np.random.default_rng(0))
    assert mixed_x.shape == x.shape and mixed_y.shape == y.shape
    assert mixed_y.dtype == np.float32
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, rtol=1e-6)
    assert (mixed_y >= 0).all()
    assert (mixed_y.max(axis=1) < 1.0).sum() >= 8  # most examples really mixed
    # Each label row is (weight on own class, rest on the partner's class); the mean pixel is
    # the same blend of the two examples' pixel values.
    for i in range(len(x)):
        own = y[i].argmax()
        weight = mixed_y[i, own]
        if weight == 1.0:
            continue
        partner_value = (mixed_x[i].mean() - weight * i) / (1.0 - weight)
        assert partner_value == pytest.approx(round(partner_value), abs=1e-3)
        partner = int(round(partner_value))
        assert mixed_y[i, partner % 4] == pytest.approx(1.0 - weight, abs=1e-5) or partner % 4 == own


def test_cutmix_pastes_a_rectangle_of_the_partner() -> None:
    x, y = batch()
    mixed_x, mixed_y = make_cutmix(alpha=1.0)(x, y, np.random.default_rng(3))
    for i in range(len(x)):
        foreign = mixed_x[i, ..., 0] != i
        if foreign.any():
            rows, cols = np.nonzero(foreign)
            box = foreign[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.all()  # one solid rectangle
            partner = int(mixed_x[i, rows[0], cols[0], 0])
            own = y[i].argmax()
            expected = 1.0 if partner % 4 == own else 1.0 - foreign.mean()
            assert mixed_y[i, own] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("make", [make_mixup, make_cutmix])
def test_probability_zero_leaves_the_batch_alone(make) -> None:
    x, y = batch()
    mixed_x, mixed_y = make(probability=0.0)(x, y, np.random.default_rng(0))
    np.testing.assert_array_equal(mixed_x, x)
    np.testing.assert_array_equal(mixed_y, y)


def test_dict_labels_of_several_heads_mix_alike() -> None:
    x, y = batch()
    _, mixed = make_mixup(alpha=0.4)(x, {"a": y, "b": y[:, ::-1]}, np.random.default_rng(1))
    np.testing.assert_allclose(mixed["a"], mixed["b"][:, ::-1], rtol=1e-6)


def test_same_rng_same_result() -> None:
    x, y = batch()
    first = make_cutmix()(x, y, np.random.default_rng(5))
    second = make_cutmix()(x, y, np.random.default_rng(5))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_cutmix_needs_images() -> None:
    with pytest.raises(kplug.DataError, match="cutmix needs images"):
        make_cutmix()(np.ones((4, 10), "float32"), np.eye(4, dtype="float32"), np.random.default_rng(0))
