"""predict / evaluate on a finished run: per-example records, new files through the run's reader."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import kplug
from kplug.cli.main import main


@pytest.fixture
def digits_run(mnist_options, plugins):
    """A small finished run on digits 5-9 (ids 0-4 follow the where order)."""
    config = {
        "name": "digits59",
        "seed": 0,
        "data": {
            "source": "idx",
            "options": mnist_options,
            "where": {"label": [5, 6, 7, 8, 9]},
            "limit": 400,
            "split": {"test": 0.25},
        },
        "model": {"backbone": {"name": "small-cnn"}, "heads": [{"name": "classification", "id": "digit"}]},
        "train": {"epochs": 3, "optimizer": {"learning_rate": 3e-3}, "verbose": 0},
        "output": {"dir": "runs/digits59"},
    }
    return kplug.fit(config, plugins=plugins)


def test_predict_returns_a_record_per_example(digits_run, plugins, mnist_options):
    records = kplug.predict(digits_run.run_dir, plugins=plugins)
    assert len(records) == digits_run.report["data"]["test"] > 90
    from kplug.builtin.datasets import idx

    truth = idx(**mnist_options).targets["label"]
    indices = [r["index"] for r in records]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert set(truth[indices].tolist()) == {5, 6, 7, 8, 9}  # index is the row in the source file
    first = records[0]
    # one head: flat fields, no head prefix; the split has labels, so the true one comes along
    assert list(first) == ["index", "label", "true_label", "label_id", "probabilities", "logits"]
    assert len(first["probabilities"]) == 5 and len(first["logits"]) == 5
    assert sum(first["probabilities"]) == pytest.approx(1.0, abs=1e-6)
    assert first["label_id"] == int(np.argmax(first["logits"]))
    assert first["label"] == [5, 6, 7, 8, 9][first["label_id"]]
    # labels are typed as in the data: the idx labels are integers
    assert {r["label"] for r in records} <= {5, 6, 7, 8, 9}
    assert all(type(r["label"]) is int and type(r["true_label"]) is int for r in records)
    assert [r["true_label"] for r in records] == truth[indices].tolist()


def test_predictions_agree_with_the_labels(digits_run, plugins, mnist_options):
    from kplug.builtin.datasets import idx

    records = kplug.predict(digits_run.run_dir, data=mnist_options["images"], plugins=plugins)
    assert len(records) == 2000  # the whole file, read by the run's own reader without labels
    truth = idx(**mnist_options).targets["label"]
    keep = np.isin(truth, [5, 6, 7, 8, 9])
    assert "true_label" not in records[0]  # only images were given
    predicted = np.array([r["label"] for r in records])
    assert (predicted[keep] == truth[keep]).mean() > 0.8


def test_evaluate_on_the_test_split_and_on_options(digits_run, plugins, tmp_path, mnist_options):
    metrics = kplug.evaluate(digits_run.run_dir, plugins=plugins)
    assert metrics["accuracy"] == pytest.approx(digits_run.metrics["accuracy"], abs=1e-6)
    with pytest.raises(kplug.DataError, match="is not one of the 5 classes the model knows"):
        kplug.evaluate(digits_run.run_dir, data=mnist_options, plugins=plugins)  # digits 0-4 are unknown


def test_loading_something_that_is_not_a_run(tmp_path, plugins):
    with pytest.raises(
        kplug.CheckpointError, match="not a finished kplug run directory: config.yaml is missing"
    ):
        kplug.predict(tmp_path, plugins=plugins)


def test_runs_on_in_memory_arrays_need_the_data_passed_again(blobs, plugins):
    from conftest import blob_config

    x, y = blobs
    config = blob_config(x, y)
    config["train"] = {"epochs": 10, "optimizer": {"learning_rate": 1e-2}, "verbose": 0}
    result = kplug.fit(config, plugins=plugins)
    with pytest.raises(kplug.DataError, match="trained on in-memory data .* pass the examples with data="):
        kplug.evaluate(result.run_dir, split="validation", plugins=plugins)
    metrics = kplug.evaluate(result.run_dir, data={"x": x, "y": y}, plugins=plugins)
    assert metrics["accuracy"] > 0.9
    records = kplug.predict(result.run_dir, data={"x": x[:7]}, plugins=plugins)
    assert [r["index"] for r in records] == list(range(7))


def test_trainer_evaluates_and_predicts_its_own_run(blobs, plugins):
    from conftest import blob_config

    x, y = blobs
    config = blob_config(
        x, y, data={"source": "npz", "options": {"path": "blobs.npz"}, "split": {"test": 0.25}}
    )
    np.savez("blobs.npz", x=x, y=y)
    trainer = kplug.Trainer(config, plugins=plugins)
    result = trainer.fit()
    assert trainer.evaluate()["accuracy"] == pytest.approx(result.metrics["accuracy"], abs=1e-6)
    assert len(trainer.predict()) == result.report["data"]["test"]


def test_predict_on_an_unlabeled_csv_and_with_key_value_options(plugins, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 2))
    y = (x[:, 0] > 0).astype(int)
    rows = "".join(f"{a},{b},{c}\n" for (a, b), c in zip(x, y, strict=True))
    (tmp_path / "train.csv").write_text("a,b,label\n" + rows)
    (tmp_path / "new.csv").write_text("a,b\n1.5,0\n-1.5,0\n")
    config = {
        "data": {"source": "csv", "options": {"path": "train.csv"}},
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [8]}},
            "heads": [{"name": "classification"}],
        },
        "train": {"epochs": 20, "optimizer": {"learning_rate": 0.05}, "verbose": 0},
        "output": {"dir": "runs/csv"},
    }
    kplug.fit(config, plugins=plugins)
    by_path = kplug.predict("runs/csv", data="new.csv", plugins=plugins)
    by_option = kplug.predict("runs/csv", data={"path": "new.csv"}, plugins=plugins)
    assert [r["label"] for r in by_path] == [1, 0]  # integer labels in the data stay integers
    assert "true_label" not in by_path[0]
    assert by_option == by_path
    with pytest.raises(kplug.DataError, match="evaluate needs labelled data"):
        kplug.evaluate("runs/csv", data="new.csv", plugins=plugins)


def test_predict_gives_each_heads_output_for_every_example(blobs, plugins, capsys):
    x, y = blobs
    size = (x[:, 0] - x[:, 1]).astype("float32")
    np.savez("two.npz", x=x, y=y, size=size)
    config = {
        "name": "two-heads",
        "seed": 0,
        "data": {
            "source": "npz",
            "options": {"path": "two.npz", "targets": ["y", "size"]},
            "split": {"test": 0.25},
        },
        "model": {
            "backbone": {"name": "mlp", "options": {"units": [16]}},
            "heads": [
                {"name": "classification", "id": "kind"},
                {"name": "regression", "id": "size", "target": "size"},
            ],
        },
        "train": {"epochs": 20, "optimizer": {"learning_rate": 0.02}, "verbose": 0},
        "output": {"dir": "runs/two"},
    }
    result = kplug.fit(config, plugins=plugins)
    records = kplug.predict(result.run_dir, plugins=plugins)  # the run's test split
    # several heads: every field is prefixed with its head id; the split has both targets
    assert list(records[0]) == [
        "index",
        "kind.label",
        "kind.true_label",
        "kind.label_id",
        "kind.probabilities",
        "kind.logits",
        "size.value",
        "size.true_value",
        "size.logits",
    ]
    assert len(records) == 60
    rows = np.array([r["index"] for r in records])
    # every value is the saved model's own output for that example
    outputs = keras.saving.load_model(result.run_dir / "model.keras", compile=False).predict(
        x[rows], verbose=0
    )
    logits = np.array([r["kind.logits"] for r in records])
    np.testing.assert_allclose(logits, outputs["kind"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        [r["kind.probabilities"] for r in records],
        keras.ops.convert_to_numpy(keras.ops.softmax(outputs["kind"])),
        rtol=1e-5,
        atol=1e-6,
    )
    assert [r["kind.label"] for r in records] == outputs["kind"].argmax(axis=1).tolist()
    np.testing.assert_allclose([r["size.value"] for r in records], outputs["size"], rtol=1e-5, atol=1e-5)
    assert [r["kind.true_label"] for r in records] == y[rows].tolist()
    np.testing.assert_allclose([r["size.true_value"] for r in records], size[rows])
    # ... and each head answers its own target
    assert np.mean([r["kind.label"] == y[r["index"]] for r in records]) > 0.9
    predicted_size = np.array([r["size.value"][0] for r in records])
    assert np.corrcoef(predicted_size, size[rows])[0, 1] > 0.9
    # the command line writes the same records, one JSON line each
    assert main(["--no-plugins", "predict", str(result.run_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == records
