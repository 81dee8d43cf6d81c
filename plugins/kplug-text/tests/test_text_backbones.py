"""Text backbones: random-init BERT and DistilBERT, pooling, keras-hub presets, option errors."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest

import kplug_text
from kplug_text.backbones import INPUT_NAMES, text_model
from kplug_text.checkpoints import HF_ACTIVATIONS, read_checkpoint

TINY = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32, "sequence_length": 16}
TEXTS = np.asarray(["a good film", "a dull , lifeless and irritating story"])


def features(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.fixture(scope="module")
def tiny_bert(vocabulary: str) -> keras.Model:
    """A one-layer random-init BERT, mean-pooled, without dropout."""
    return kplug_text.bert(vocabulary=vocabulary, pooling="mean", dropout=0.0, **TINY)


@pytest.fixture(scope="module")
def inputs(vocabulary: str) -> dict[str, np.ndarray]:
    return kplug_text.bert_preprocessor(vocabulary=vocabulary, sequence_length=16)(TEXTS)


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_random_init_backbone_pools_text_to_vectors(family: str, vocabulary: str) -> None:
    backbone = getattr(kplug_text, family)(vocabulary=vocabulary, **TINY)
    preprocess = getattr(kplug_text, f"{family}_preprocessor")(vocabulary=vocabulary, sequence_length=16)
    inputs = preprocess(TEXTS)
    assert sorted(backbone.input) == sorted(inputs)
    out = features(backbone, inputs)
    assert out.shape == (2, 16) and np.isfinite(out).all()
    encoder = backbone.get_layer("encoder")
    assert encoder.num_layers == 1 and encoder.activation == "gelu"


def test_mean_pooling_ignores_padding(tiny_bert: keras.Model, inputs: dict[str, np.ndarray]) -> None:
    short = {key: value[:1, :5] for key, value in inputs.items()}  # "a good film" and no padding
    assert short["padding_mask"].all()
    np.testing.assert_allclose(features(tiny_bert, short), features(tiny_bert, inputs)[:1], atol=1e-5)
    sequence = keras.ops.convert_to_numpy(tiny_bert.get_layer("encoder")(inputs)["sequence_output"])
    np.testing.assert_allclose(features(tiny_bert, inputs)[0], sequence[0, :5].mean(axis=0), atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "max", "pooler"])
def test_pooling_choices(pooling: str, tiny_bert: keras.Model, inputs: dict[str, np.ndarray]) -> None:
    encoder = tiny_bert.get_layer("encoder")
    backbone = text_model(encoder, INPUT_NAMES["bert"], pooling, "bert")
    sequence = keras.ops.convert_to_numpy(encoder(inputs)["sequence_output"])
    out = features(backbone, inputs)
    if pooling == "cls":
        np.testing.assert_allclose(out, sequence[:, 0], atol=1e-6)
    elif pooling == "max":
        real = inputs["padding_mask"][..., None] > 0
        np.testing.assert_allclose(out, np.where(real, sequence, -np.inf).max(axis=1), atol=1e-6)
    else:
        assert np.abs(out).max() <= 1.0  # tanh of BERT's pooler dense


def test_a_keras_hub_preset_directory_loads_the_same_network(
    tiny_bert: keras.Model, inputs: dict[str, np.ndarray], vocabulary: str, tmp_path: Path
) -> None:
    tiny_bert.get_layer("encoder").save_to_preset(str(tmp_path / "preset"))
    loaded = kplug_text.bert(
        path=str(tmp_path / "preset"), vocabulary=vocabulary, pooling="mean", dropout=0.0, sequence_length=16
    )
    assert loaded.get_layer("encoder").activation == "gelu"  # the preset's own, saved in its config
    np.testing.assert_allclose(features(loaded, inputs), features(tiny_bert, inputs), atol=1e-6)


def test_hugging_face_activation_names(tmp_path: Path) -> None:
    for hidden_act, expected in [("gelu", "gelu"), ("gelu_new", "gelu_approximate"), ("relu", "relu")]:
        (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": hidden_act}))
        assert read_checkpoint(tmp_path, "path").activation() == expected
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_act": "mish"}))
    with pytest.raises(kplug.CheckpointError, match="hidden_act = 'mish'"):
        read_checkpoint(tmp_path, "path").activation()
    assert set(HF_ACTIVATIONS.values()) <= set(kplug_text.encoders.ACTIVATION_FUNCTIONS)


def test_minilm_reads_its_tokenizer_settings(minilm_dir: Path) -> None:
    checkpoint = read_checkpoint(minilm_dir, "path")
    assert checkpoint.model_type == "bert"
    assert checkpoint.activation() == "gelu"
    assert checkpoint.lowercase() and checkpoint.strip_accents()


def test_option_errors_name_the_field(vocabulary: str, minilm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="options.path = .*no such directory"):
        kplug_text.bert(path=str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "distilbert"}))
    with pytest.raises(kplug.ConfigError, match="holds a 'distilbert' checkpoint"):
        kplug_text.bert(path=str(tmp_path))
    with pytest.raises(kplug.ConfigError, match="num_layers = 2: the architecture comes from the checkpoint"):
        kplug_text.bert(path=str(minilm_dir), num_layers=2)
    with pytest.raises(kplug.ConfigError, match="sequence_length = 1024"):
        kplug_text.minilm_l6(sequence_length=1024)
    with pytest.raises(kplug.ConfigError, match="divisible"):
        kplug_text.bert(vocabulary=vocabulary, hidden_dim=10, num_heads=3)


def test_options_are_validated_against_the_factory(plugins: kplug.Plugins) -> None:
    component = plugins.registry.get("backbone", "minilm-l6")
    assert component.extras["preprocessor"] is kplug_text.minilm_l6_preprocessor
    assert plugins.registry.get("backbone", "bert").extras["preprocessor"] is kplug_text.bert_preprocessor
    assert "distilbert" in plugins.registry.names("backbone")


def test_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "text")
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert {"bert", "distilbert", "minilm-l6"} <= set(loaded.registry.names("backbone"))
    assert loaded.registry.get("backbone", "minilm-l6").provider.startswith("kplug-text 0.1.0")
