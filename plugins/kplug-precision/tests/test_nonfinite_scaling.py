"""float16 gradient overflow handled by loss scaling is not a non-finite loss for kplug: a run whose
loss scale starts far too high skips those steps inside the LossScaleOptimizer and trains on."""

from __future__ import annotations

import keras
import kplug
import numpy as np
import pytest

import kplug_precision


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("on_nonfinite", ["stop", "skip_batch"])
def test_loss_scale_overflow_is_not_a_nonfinite_loss(on_nonfinite):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 64)
    x = (rng.normal(0, 3, (3, 8))[y] + rng.normal(0, 1, (192, 8))).astype("float32")
    initial_scale = 2.0**40  # float16 gradients times 2**40 overflow: the first steps are skipped
    result = kplug.fit(
        {
            "seed": 1,
            "data": {"source": "arrays", "options": {"x": x, "y": y}},
            "model": {
                "backbone": {"name": "mlp", "options": {"units": [32]}},
                "heads": [{"name": "classification"}],
            },
            "train": {
                "epochs": 4,
                "batch_size": 16,
                "verbose": 0,
                "optimizer": {"learning_rate": 0.02},
                "on_nonfinite": on_nonfinite,
            },
            "precision": {"policy": "mixed_float16", "options": {"initial_scale": initial_scale}},
            "output": {"dir": "runs/f16"},
        },
        plugins=kplug.load_plugins([kplug_precision], entry_points=False),
    )
    optimizer = result.model.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(keras.ops.convert_to_numpy(optimizer.dynamic_scale)) < initial_scale  # overflow happened
    assert np.isfinite(result.history["loss"]).all()
    assert result.history["accuracy"][-1] > 0.8
