"""kplug.backend.cpu_matmul: oneDNN float32 products while training on the torch backend, only when exact."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.backend import cpu_matmul
from kplug.backend.cpu_matmul import ENVIRONMENT, ROUTE, onednn_matmul

TORCH = keras.backend.backend() == "torch"
torch_only = pytest.mark.skipif(not TORCH, reason="a setting of the torch backend")


def _precision() -> str:
    import torch

    return torch.backends.mkldnn.matmul.fp32_precision


def _exact_here() -> bool:
    """Whether oneDNN keeps float32 products exact on this machine (the routing's condition)."""
    import torch

    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = ROUTE
    try:
        return cpu_matmul._exactly_float32(torch)
    finally:
        matmul.fp32_precision = before


@torch_only
def test_routing_is_on_in_the_block_when_exact_and_restored_after():
    before = _precision()
    with onednn_matmul() as on:
        inside = _precision()
    assert on == _exact_here()
    assert inside == (ROUTE if on else before)
    assert _precision() == before


@torch_only
def test_products_in_the_block_are_float32s():
    import torch

    rng = np.random.default_rng(0)
    left, right = (torch.from_numpy(rng.normal(size=s).astype("float32")) for s in [(64, 384), (384, 96)])
    reference = left.double() @ right.double()
    with onednn_matmul():
        product = left @ right
    assert float((product.double() - reference).abs().max()) < 1e-4 * float(reference.abs().max())


@torch_only
def test_no_routing_when_the_check_finds_rounded_inputs(monkeypatch):
    monkeypatch.setattr(cpu_matmul, "_exactly_float32", lambda torch: False)
    before = _precision()
    with onednn_matmul() as on:
        assert not on
        assert _precision() == before


@torch_only
def test_environment_turns_it_off(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT, "0")
    before = _precision()
    with onednn_matmul() as on:
        assert not on
        assert _precision() == before


@pytest.mark.skipif(TORCH, reason="the other backends")
def test_other_backends_change_nothing():
    with onednn_matmul() as on:
        assert not on


class PrecisionSeen(keras.callbacks.Callback):
    seen: list[str] = []

    def on_train_batch_begin(self, batch, logs=None):
        PrecisionSeen.seen.append(_precision())


class PrecisionPlugin:
    @kplug.hookimpl
    def kplug_register_callbacks(self, register):
        register("precision-seen", PrecisionSeen)


@torch_only
def test_fit_trains_with_the_routing_and_restores_it(blobs):
    """The default is kplug.fit's: every training batch runs with oneDNN products (where exact)."""
    x, y = blobs
    PrecisionSeen.seen = []
    before = _precision()
    config = blob_config(x, y, callbacks=[{"name": "precision-seen"}])
    config["train"]["epochs"] = 1
    kplug.fit(config, plugins=kplug.load_plugins([PrecisionPlugin()], entry_points=False))
    assert PrecisionSeen.seen
    assert set(PrecisionSeen.seen) == {ROUTE if _exact_here() else before}
    assert _precision() == before
