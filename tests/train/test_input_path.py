"""kplug.train.input_path: on tensorflow, in-memory arrays reach fit as tf.data, with the same
batches in the same order as kplug's batch stream, and the same exact mid-epoch resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import blob_config
from test_checkpoint import InterruptOnce, InterruptPlugin, shuffled_dropout_config

import kplug
from kplug.data.batches import TrainingBatches
from kplug.plugin.distribution import Distribution
from kplug.train import input_path, trainer
from kplug.train.input_path import uses_tf_pipeline

tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the tf.data input path of the tensorflow backend"
)


class TwoReplicas(Distribution):
    replicas = 2


def _batches(**options) -> TrainingBatches:
    return TrainingBatches(np.zeros((10, 2)), np.zeros(10), batch_size=4, seed=0, **options)


def test_only_unaltered_array_batches_in_one_replica_on_tensorflow_take_the_pipeline():
    one = Distribution()
    assert uses_tf_pipeline(_batches(), one, "tensorflow")
    assert uses_tf_pipeline(_batches(weights=np.ones(10)), one, "tensorflow")
    assert not uses_tf_pipeline(_batches(), one, "jax")
    assert not uses_tf_pipeline(_batches(), one, "torch")
    assert not uses_tf_pipeline(_batches(accumulation=2), one, "tensorflow")  # padded windows
    assert not uses_tf_pipeline(_batches(transforms=[lambda x, y, rng: (x, y)]), one, "tensorflow")
    assert not uses_tf_pipeline(_batches(), TwoReplicas(), "tensorflow")


@pytest.fixture
def pipelines(monkeypatch):
    """Counts the tf.data pipelines the trainer builds."""
    from kplug.backend import tf_batches

    built = []
    original = tf_batches.array_batches

    def counting(*args, **kwargs):
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(tf_batches, "array_batches", counting)
    return built


def _batch_stream_only(monkeypatch) -> None:
    """Make the trainer feed fit kplug's PyDataset batch stream (the generic path)."""
    monkeypatch.setattr(
        trainer, "fit_input", lambda batches, distribution: distribution.shard_batches(batches)
    )


def _weights(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def _assert_same_weights(ours: keras.Model, theirs: keras.Model) -> None:
    for mine, other in zip(_weights(ours), _weights(theirs), strict=True):
        np.testing.assert_allclose(mine, other, atol=1e-6, rtol=1e-5)


@tensorflow_only
def test_the_pipeline_trains_to_the_weights_of_the_batch_stream(blobs, plugins, pipelines, monkeypatch):
    x, y = blobs
    weights = np.linspace(0.5, 1.5, len(y)).astype("float32")
    config = blob_config(
        x,
        y,
        data={
            "source": "arrays",
            "options": {"x": x, "y": y, "targets": {"weight": weights}},
            "split": {"validation": 0.2},
            "sample_weight": "weight",
        },
    )
    config["train"]["compile"] = {"steps_per_execution": 4, "jit_compile": True}
    config["train"]["batch_size"] = 20  # 192 rows: 10 batches per epoch, the last one short
    fast = kplug.fit(config, plugins=plugins)
    assert len(pipelines) == 1 and pipelines[0][6] is not None  # one fit call, weighted
    _batch_stream_only(monkeypatch)
    config["output"] = {"dir": "runs/stream"}
    generic = kplug.fit(config, plugins=plugins)
    assert len(pipelines) == 1
    _assert_same_weights(fast.model, generic.model)
    assert fast.history["loss"] == pytest.approx(generic.history["loss"], rel=1e-5)


@tensorflow_only
@pytest.mark.parametrize(
    "interrupt",
    # checkpoints every 5 batches land on 4-batch block boundaries: after batch 8 of the epoch
    [{"epoch": 0, "batch": 11}, {"epoch": 3, "batch": 11}],
    ids=["first-epoch", "second-stage"],
)
def test_a_mid_epoch_resume_on_the_pipeline_ends_where_the_batch_stream_does(
    blobs, interrupt, pipelines, monkeypatch
):
    x, y = blobs
    plugins = kplug.load_plugins([InterruptPlugin()], entry_points=False)

    def config(run_dir, stop):
        c = shuffled_dropout_config(x, y, run_dir, stop)
        c["train"]["compile"] = {"steps_per_execution": 4}
        return c

    InterruptOnce.fired = False
    cut = config("runs/cut", interrupt)
    with pytest.raises(KeyboardInterrupt):
        kplug.fit(cut, plugins=plugins)
    resumed = kplug.fit(cut, resume="runs/cut", plugins=plugins)
    resumed_at = [(args[4], args[5]) for args in pipelines if args[5]]
    assert resumed_at == [(interrupt["epoch"], 8)]  # the resumed epoch skipped its 8 trained batches
    with monkeypatch.context() as patch:
        _batch_stream_only(patch)
        straight = kplug.fit(config("runs/straight", {"epoch": 99, "batch": 0}), plugins=plugins)
    _assert_same_weights(resumed.model, straight.model)
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-5)


def test_the_trainer_takes_its_input_from_input_path():
    assert trainer.fit_input is input_path.fit_input
