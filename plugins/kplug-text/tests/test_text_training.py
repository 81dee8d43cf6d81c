"""kplug.fit on text: tokenised by the run's preprocessor, trained, saved, predicted with label names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import kplug
import numpy as np
import pytest
from text_data import DATA, read_column

TINY = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}


def run_config(output: Path, vocabulary: str, **overrides: Any) -> dict[str, Any]:
    """A tiny random-init BERT on 96 SST-2 phrases (header ``sentence<TAB>label``), tokenised by
    ``bert-tokenizer`` (the backbone's default preprocessor) with its own options."""
    config: dict[str, Any] = {
        "name": "tiny-text",
        "seed": 5,
        "data": {
            "source": "tsv",
            "options": {"path": str(DATA / "sst2_sample.tsv"), "label": "label", "text": True},
            "split": {"validation": 0.25},
        },
        "model": {
            "backbone": {"name": "bert", "options": {"pooling": "mean", **TINY}},
            "preprocessor": {
                "name": "bert-tokenizer",
                "options": {"vocabulary": vocabulary, "sequence_length": 24},
            },
            "heads": [{"name": "classification", "id": "sentiment"}],
        },
        "train": {
            "epochs": 4,
            "batch_size": 16,
            "verbose": 0,
            "optimizer": {"name": "adamw", "learning_rate": 3e-3},
        },
        "output": {"dir": str(output), "overwrite": True},
    }
    for key, value in overrides.items():
        config[key] = value
    return config


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_a_few_steps_of_fine_tuning_lower_the_loss(
    plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    result = kplug.fit(run_config(tmp_path / "run", vocabulary), plugins=plugins)
    losses = result.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert result.model.get_layer("backbone").get_layer("encoder").num_layers == 1


@pytest.mark.slow("jax")  # XLA compiles it for long: slow on jax, quick elsewhere
def test_predict_returns_label_names_and_probabilities(
    plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    data = {
        "source": "tsv",
        "options": {
            "path": str(DATA / "agnews_sample.tsv"),
            "header": False,
            "features": [0],
            "label": 1,
            "text": True,
        },
        "split": {"test": 0.25},
    }
    config = run_config(tmp_path / "run", vocabulary, data=data)
    config["model"]["heads"] = [{"name": "classification", "id": "topic"}]
    config["train"]["epochs"] = 2
    result = kplug.fit(config, plugins=plugins)
    records = kplug.predict(result.run_dir, split="test", plugins=plugins)
    assert len(records) == result.report["data"]["test"] > 0
    names = {"World", "Sports", "Business", "Sci/Tech"}
    for record in records:
        assert record["label"] in names
        probabilities = record["probabilities"]
        assert len(probabilities) == 4 and abs(sum(probabilities) - 1.0) < 1e-4
    # a new file through the run's own reader and tokenizer
    fresh = kplug.predict(result.run_dir, data=str(DATA / "agnews_sample.tsv"), plugins=plugins)
    assert len(fresh) == 48 and fresh[0]["label"] in names


def sentiment_targets() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """SST-2 phrases with two made-up targets: tags (sentiment, plus "long") and length / 100."""
    texts = read_column(DATA / "sst2_sample.tsv")
    positive = read_column(DATA / "sst2_sample.tsv", column=1) == "1"
    long = np.char.str_len(texts) > 60
    tags = np.where(positive, "positive", "negative").astype(object)
    tags[long] = tags[long] + "|long"
    return texts, {"tags": tags, "length": (np.char.str_len(texts) / 100.0).astype("float32")}


@pytest.mark.parametrize("head", ["multi-label", "regression"])
@pytest.mark.slow
def test_multi_label_and_regression_heads_on_text(
    head: str, plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    texts, targets = sentiment_targets()
    target = "tags" if head == "multi-label" else "length"
    data = {"source": "arrays", "options": {"x": texts, "targets": targets}, "split": {"validation": 0.25}}
    config = run_config(tmp_path / "run", vocabulary, data=data)
    config["model"]["heads"] = [{"name": head, "id": target, "target": target}]
    config["train"]["epochs"] = 3
    result = kplug.fit(config, plugins=plugins)
    assert result.history["loss"][-1] < result.history["loss"][0]
    record = kplug.predict(result.run_dir, data={"x": texts[:2]}, plugins=plugins)[0]
    if head == "multi-label":
        assert set(record["label"]) <= {"long", "negative", "positive"}
        assert len(record["probabilities"]) == 3
    else:
        assert len(record["value"]) == 1


def test_numeric_features_are_refused(plugins: kplug.Plugins, vocabulary: str, tmp_path: Path) -> None:
    data = {"source": "arrays", "options": {"x": np.zeros((20, 3), "float32"), "y": np.arange(20) % 2}}
    with pytest.raises(kplug.DataError, match="text features"):
        kplug.fit(run_config(tmp_path / "run", vocabulary, data=data), plugins=plugins)


def old_style(config: dict[str, Any]) -> dict[str, Any]:
    """The same run written as before preprocessors were components: tokenizer options on the backbone."""
    model = dict(config["model"])
    preprocessor = model.pop("preprocessor")
    options = {**model["backbone"]["options"], **preprocessor["options"]}
    model["backbone"] = {"name": "bert", "options": options}
    return {**config, "model": model}


@pytest.mark.slow
def test_a_config_with_tokenizer_options_on_the_backbone_trains_the_same(
    plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    config = run_config(tmp_path / "new", vocabulary)
    config["train"]["epochs"] = 1
    new = kplug.fit(config, plugins=plugins)
    old_config = old_style({**config, "output": {"dir": str(tmp_path / "old"), "overwrite": True}})
    old = kplug.fit(old_config, plugins=plugins)
    assert old.history["loss"] == new.history["loss"]
    for a, b in zip(old.model.weights, new.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    # the old run directory predicts through the same preprocessor
    assert kplug.predict(old.run_dir, split="validation", plugins=plugins) == kplug.predict(
        new.run_dir, split="validation", plugins=plugins
    )


def test_an_option_of_neither_component_lists_both(
    plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    config = old_style(run_config(tmp_path / "run", vocabulary))
    config["model"]["backbone"]["options"]["sequence_lenght"] = 32
    with pytest.raises(kplug.ConfigError) as error:
        kplug.fit(config, plugins=plugins)
    message = str(error.value)
    expected = "neither backbone 'bert' nor its preprocessor 'bert-tokenizer' has an option 'sequence_lenght'"
    assert expected in message
    assert "Did you mean 'sequence_length'" in message
    assert "bert options: path (" in message
    assert "bert-tokenizer options (model.preprocessor.options): path" in message


@pytest.mark.slow
def test_registering_imports_no_keras_hub_and_a_saved_run_loads(
    plugins: kplug.Plugins, vocabulary: str, tmp_path: Path
) -> None:
    config = run_config(tmp_path / "run", vocabulary)
    config["train"]["epochs"] = 1
    result = kplug.fit(config, plugins=plugins)
    expected = kplug.predict(result.run_dir, split="validation", plugins=plugins)
    script = f"""
import json, sys
import kplug
import keras
backend = keras.backend.backend()  # its own library (tensorflow, torch) is loaded by Keras itself
loaded = kplug.load_plugins()
assert loaded.failures == [], loaded.failures
assert {{"bert", "resnet"}} <= set(loaded.registry.names("backbone"))
heavy = sorted(m for m in ("keras_hub", "tensorflow", "torch") if m in sys.modules and m != backend)
records = kplug.predict({str(result.run_dir)!r}, split="validation", plugins=loaded)
print(json.dumps({{"heavy": heavy, "records": records}}))
"""
    # the backend of this test's environment (each backend's test environment has only its library)
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "KPLUG_LOAD_PLUGINS": "text,vision"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["heavy"] == []
    assert [r["label"] for r in found["records"]] == [r["label"] for r in expected]
