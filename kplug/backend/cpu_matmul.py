"""Faster float32 matrix products while training on the torch backend's CPU: oneDNN instead of MKL.

PyTorch computes a float32 ``mm`` / ``addmm`` / ``bmm`` on the CPU with MKL. On some CPUs that is
half as fast as oneDNN's kernels, which TensorFlow and XLA use: on the AMD EPYC benchmark machine
a 2048x384 @ 384x1536 product takes 12.4 ms with MKL (~195 GFLOP/s on 2 cores) and 5.5 ms with
oneDNN (~440 GFLOP/s), and fine-tuning all-MiniLM-L6-v2 goes from 0.98 to 0.64 s per step.

PyTorch sends float32 products to oneDNN only when ``torch.backends.mkldnn.matmul.fp32_precision``
is ``"bf16"``, which *allows* oneDNN to round the inputs to bfloat16. oneDNN does so only where it
has a bfloat16 kernel for the CPU (AMX); elsewhere (as on the machine above) it runs its float32
kernel and the results are float32's. ``onednn_matmul`` therefore turns the routing on for the
duration of training only after checking, with a product that bfloat16 inputs would change, that
the result is exactly float32's; otherwise, or with ``KPLUG_ONEDNN_MATMUL=0`` in the environment,
it changes nothing. The previous setting is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import keras

ENVIRONMENT = "KPLUG_ONEDNN_MATMUL"
ROUTE = "bf16"  # the fp32_precision value under which PyTorch uses oneDNN for float32 products


def _exactly_float32(torch) -> bool:
    """Whether float32 products (``mm`` and ``bmm``) under the current setting keep float32 inputs.

    ``1 + 2**-12`` has no bfloat16 representation (it rounds to 1), while every partial sum of
    384 copies of it is exact in float32: any rounding of the inputs shows in the sums.
    """
    value = 1 + 2**-12
    left = torch.full((2, 256, 384), value, dtype=torch.float32)
    right = torch.ones((2, 384, 256), dtype=torch.float32)
    expected = 384 * value
    products = (torch.mm(left[0], right[0]), torch.bmm(left, right))
    return all(bool((product == expected).all()) for product in products)


@contextlib.contextmanager
def onednn_matmul() -> Iterator[bool]:
    """Within the block, float32 products on the torch backend's CPU use oneDNN when that is exact.

    Yields:
        True when the oneDNN routing is on in the block.
    """
    if keras.backend.backend() != "torch" or os.environ.get(ENVIRONMENT, "1") == "0":
        yield False
        return
    import torch

    matmul = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if matmul is None or not torch.backends.mkldnn.is_available() or matmul.fp32_precision == ROUTE:
        yield False
        return
    before = matmul.fp32_precision
    matmul.fp32_precision = ROUTE
    try:
        exact = _exactly_float32(torch)
        if not exact:
            matmul.fp32_precision = before
        yield exact
    finally:
        matmul.fp32_precision = before
