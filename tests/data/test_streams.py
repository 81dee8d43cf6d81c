"""Streaming sources (generators, PyDataset, torch data, tf.data): they train like the same arrays,
read again every epoch, and a source that cannot seek resumes at the start of its epoch."""

from __future__ import annotations

import itertools
import json
import signal

import keras
import numpy as np
import pytest
from conftest import blob_config

import kplug
from kplug.data.batches import epoch_order

SEED = 1


def in_epoch_order(x, y, epoch=0):
    """The rows in the order the arrays source trains epoch ``epoch`` (so a stream can match it)."""
    order = epoch_order(SEED, epoch, len(x))
    return x[order], y[order]


def stream_config(source, data, **overrides):
    config = blob_config(None, None, **overrides)
    config["seed"] = SEED
    config["data"] = {"source": source, "options": {"data": data}}
    return config


def arrays_result(x, y, epochs=1):
    config = blob_config(x, y, output={"dir": "runs/arrays"})
    config["seed"] = SEED
    config["data"]["split"] = {}
    config["train"]["epochs"] = epochs
    return kplug.fit(config)


def assert_same_weights(a, b):
    for left, right in zip(a.model.get_weights(), b.model.get_weights(), strict=True):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, size):
        super().__init__()
        self.x, self.y, self.size = x, y, size

    @property
    def num_batches(self):
        return -(-len(self.x) // self.size)

    def __getitem__(self, index):
        rows = slice(index * self.size, (index + 1) * self.size)
        return self.x[rows], self.y[rows]


def torch_loader(x, y):
    torch = pytest.importorskip("torch")
    data = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return torch.utils.data.DataLoader(data, batch_size=10, shuffle=False)


def torch_dataset(x, y):
    torch = pytest.importorskip("torch")
    return torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def tf_dataset(x, y):
    tf = pytest.importorskip("tensorflow")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(10)


SOURCES = {
    # name: (source, build(x, y) -> data, seekable); batches of 10 rows, cut into the run's 32
    "generator function": (
        "generator",
        lambda x, y: lambda: ((x[i : i + 10], y[i : i + 10]) for i in range(0, len(x), 10)),
        False,
    ),
    "list of examples": ("generator", lambda x, y: list(zip(x, y, strict=True)), True),
    "PyDataset": ("pydataset", lambda x, y: Batches(x, y, 10), True),
    "torch DataLoader": ("torch-data", torch_loader, False),
    "torch Dataset": ("torch-data", torch_dataset, True),
    "tf.data": ("tf-data", tf_dataset, False),
}


@pytest.mark.parametrize("kind", SOURCES)
def test_a_stream_trains_like_the_same_arrays(kind, blobs):
    x, y = blobs
    source, build, seekable = SOURCES[kind]
    expected = arrays_result(x, y)
    config = stream_config(source, build(*in_epoch_order(x, y)))
    config["train"]["epochs"] = 1
    result = kplug.fit(config)
    assert_same_weights(result, expected)
    assert result.report["data"]["train"] == len(x)
    assert result.report["data"]["stream"]["seekable"] is seekable


def test_a_generator_function_is_read_again_every_epoch(blobs):
    x, y = blobs
    calls = itertools.count(-1)  # the first call is kplug's scan of the targets

    def rows():
        ordered = in_epoch_order(x, y, max(next(calls), 0))
        return ((ordered[0][i : i + 7], ordered[1][i : i + 7]) for i in range(0, len(x), 7))

    result = kplug.fit(stream_config("generator", rows))
    assert_same_weights(result, arrays_result(x, y, epochs=3))


def test_a_stream_takes_validation_data_and_predicts(blobs):
    x, y = blobs
    source, build, _ = SOURCES["PyDataset"]
    result = kplug.fit(stream_config(source, build(x[:200], y[:200])), validation_data=(x[200:], y[200:]))
    assert result.metrics["split"] == "validation"
    records = kplug.predict(result.run_dir, data=Batches(x[200:], y[200:], 16))
    assert [r["true_label"] for r in records] == y[200:].tolist()
    saved = (result.run_dir / "config.yaml").read_text()
    assert "data: <Batches object from Python>" in saved


class CtrlCAt(keras.callbacks.Callback):
    """Press Ctrl-C after batch ``batch`` of epoch ``epoch`` (kplug then checkpoints right there)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.now = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.now = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.now, batch) == (self.epoch, self.batch):
            signal.raise_signal(signal.SIGINT)


def interrupted_then_resumed(config):
    with pytest.raises(KeyboardInterrupt):
        kplug.fit({**config, "callbacks": [CtrlCAt(1, 2)]})
    return kplug.fit(config, resume=config["output"]["dir"])


@pytest.mark.parametrize("kind", ["generator function", "torch DataLoader"])
def test_a_stream_that_cannot_seek_resumes_at_the_start_of_its_epoch(kind, blobs):
    x, y = blobs
    source, build, _ = SOURCES[kind]
    resumed = interrupted_then_resumed(stream_config(source, build(x, y)))
    stream = resumed.report["data"]["stream"]
    assert stream["resume"] == "epoch boundary"
    assert "resumed at the start of epoch 2, not at batch 4" in stream["resumed"]
    assert any("resumed at the start of epoch 2" in w["message"] for w in resumed.report["warnings"])
    assert len(resumed.history["loss"]) == 3
    report = json.loads((resumed.run_dir / "report.json").read_text())
    assert report["data"]["stream"] == stream


@pytest.mark.parametrize("kind", ["PyDataset", "torch Dataset"])
def test_a_seekable_stream_resumes_mid_epoch_exactly(kind, blobs):
    x, y = blobs
    source, build, _ = SOURCES[kind]
    uninterrupted = kplug.fit(stream_config(source, build(x, y), output={"dir": "runs/whole"}))
    resumed = interrupted_then_resumed(stream_config(source, build(x, y)))
    assert "resumed" not in resumed.report["data"]["stream"]
    assert_same_weights(resumed, uninterrupted)


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        ("generator", (i for i in range(3)), r"a generator object can be read only once.*generator function"),
        ("generator", 3, r"data.options.data: expected a generator function or an iterable .* got int"),
        ("generator", [(1, 2, 3)], r"item 0 of the list is tuple of 3; each item must be a pair \(x, y\)"),
        ("pydataset", object(), r"data.options.data: expected a keras.utils.PyDataset"),
        ("tf-data", [1], r"data.options.data: expected a tf.data.Dataset; got list"),
    ],
)
def test_wrong_stream_input_names_the_field(source, data, expected):
    with pytest.raises(kplug.DataError, match=expected):
        kplug.fit(stream_config(source, data))


def test_a_stream_is_not_split(blobs):
    x, y = blobs
    config = stream_config("generator", list(zip(x, y, strict=True)))
    config["data"]["split"] = {"validation": 0.2}
    with pytest.raises(kplug.ConfigError, match=r"data.split.validation = 0.2: source 'generator' streams"):
        kplug.fit(config)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda x, y: tf_dataset(x, y), r"data.options.x: .* got _?\w*Dataset, which source 'tf-data' reads"),
        (lambda x, y: torch_loader(x, y), r"data.options.x: .* got DataLoader, which source 'torch-data'"),
        (lambda x, y: Batches(x, y, 10), r"data.options.x: .* got Batches, which source 'pydataset' reads"),
        (lambda x, y: (row for row in x), r"data.options.x: .* got generator, which source 'generator'"),
    ],
)
def test_a_data_object_given_as_arrays_names_the_source_that_reads_it(build, expected, blobs):
    x, y = blobs
    with pytest.raises(kplug.DataError, match=expected):
        kplug.fit(blob_config(build(x, y), None))


def test_a_non_array_features_error_is_whole():
    with pytest.raises(kplug.DataError, match=r"list of rows\); got an object array holding object\.$"):
        kplug.Examples(np.asarray(object()))


def test_a_file_name_as_features_is_named_whole():
    with pytest.raises(kplug.DataError, match=r"got the single value 'train.csv'\.$"):
        kplug.Examples(np.asarray("train.csv"))
