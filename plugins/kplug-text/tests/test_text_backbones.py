"""Text backbones: random-init BERT and DistilBERT, pooling, keras-hub presets, option errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import keras
import kplug
import numpy as np
import pytest

import kplug_text
from kplug_text.backbones import _preset_weights, text_model
from kplug_text.checkpoints import HF_ACTIVATIONS, read_checkpoint
from kplug_text.preprocessing import INPUT_NAMES

TINY = {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32}
TEXTS = np.asarray(["a good film", "a dull , lifeless and irritating story"])


def features(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.fixture(scope="module")
def tokenizer(vocabulary: str) -> kplug_text.TextPreprocessor:
    return kplug_text.bert_preprocessor(vocabulary=vocabulary, sequence_length=16)


@pytest.fixture(scope="module")
def tiny_bert(tokenizer: kplug_text.TextPreprocessor) -> keras.Model:
    """A one-layer random-init BERT, mean-pooled, without dropout."""
    return kplug_text.bert(preprocessor=tokenizer, pooling="mean", dropout=0.0, **TINY)


@pytest.fixture(scope="module")
def inputs(tokenizer: kplug_text.TextPreprocessor) -> dict[str, np.ndarray]:
    return tokenizer(TEXTS)


@pytest.mark.slow("jax")  # jax compiles the eager calls op by op (17 s): slow on jax, quick elsewhere
@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_random_init_backbone_is_sized_to_its_preprocessor(family: str, vocabulary: str) -> None:
    preprocess = getattr(kplug_text, f"{family}_preprocessor")(vocabulary=vocabulary, sequence_length=12)
    backbone = getattr(kplug_text, family)(preprocessor=preprocess, **TINY)
    inputs = preprocess(TEXTS)
    assert sorted(backbone.input) == sorted(inputs)
    out = features(backbone, inputs)
    assert out.shape == (2, 16) and np.isfinite(out).all()
    encoder = backbone.get_layer("encoder")
    assert encoder.num_layers == 1 and encoder.activation == "gelu"
    assert encoder.vocabulary_size == 30522 == preprocess.vocabulary_size()  # MiniLM's vocab.txt
    assert encoder.max_sequence_length == 12


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
    loaded = kplug_text.bert(path=str(tmp_path / "preset"), pooling="mean", dropout=0.0)
    assert loaded.get_layer("encoder").activation == "gelu"  # the preset's own, saved in its config
    np.testing.assert_allclose(features(loaded, inputs), features(tiny_bert, inputs), atol=1e-6)


def test_a_checkpoint_is_read_once_per_process_and_again_when_it_changes(
    tiny_bert: keras.Model, inputs: dict[str, np.ndarray], tmp_path: Path
) -> None:
    preset = tmp_path / "preset"
    tiny_bert.get_layer("encoder").save_to_preset(str(preset))
    draws = []
    for _ in range(2):  # read from disk, then from memory: the same random draws afterwards
        random.seed(5)
        loaded = kplug_text.bert(path=str(preset), pooling="mean", dropout=0.0)
        draws.append(random.random())
    assert draws[0] == draws[1]
    assert _preset_weights.cache_info().hits >= 1
    np.testing.assert_allclose(features(loaded, inputs), features(tiny_bert, inputs), atol=1e-6)

    changed = kplug_text.bert(path=str(preset), pooling="mean", dropout=0.0)
    encoder = changed.get_layer("encoder")
    encoder.set_weights([w * 0.5 for w in encoder.get_weights()])
    encoder.save_to_preset(str(preset))
    reloaded = kplug_text.bert(path=str(preset), pooling="mean", dropout=0.0)
    np.testing.assert_allclose(features(reloaded, inputs), features(changed, inputs), atol=1e-6)


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
    with pytest.raises(kplug.ConfigError, match="preprocessor.options.sequence_length = 1024"):
        kplug_text.minilm_l6_preprocessor(sequence_length=1024)
    with pytest.raises(kplug.ConfigError, match="divisible"):
        kplug_text.bert(kplug_text.bert_preprocessor(vocabulary=vocabulary), hidden_dim=10, num_heads=3)
    with pytest.raises(kplug.ConfigError, match="without a checkpoint is sized to its tokenizer"):
        kplug_text.distilbert()


def test_backbones_name_their_preprocessors(plugins: kplug.Plugins) -> None:
    registry = plugins.registry
    for backbone, preprocessor, factory in [
        ("bert", "bert-tokenizer", kplug_text.bert_preprocessor),
        ("distilbert", "distilbert-tokenizer", kplug_text.distilbert_preprocessor),
        ("minilm-l6", "minilm-l6-tokenizer", kplug_text.minilm_l6_preprocessor),
    ]:
        assert registry.get("backbone", backbone).extras["preprocessor"] == preprocessor
        assert registry.get("preprocessor", preprocessor).factory is factory


def test_backbones_take_model_options_and_preprocessors_tokenizer_options(plugins: kplug.Plugins) -> None:
    tokenizer_options = {"vocabulary", "lowercase", "sequence_length", "truncate"}
    for backbone in ("bert", "distilbert", "minilm-l6"):
        options = set(plugins.registry.get("backbone", backbone).options.model_fields)
        assert not options & tokenizer_options, backbone
        assert "path" in options and "preprocessor" not in options
    assert set(plugins.registry.get("preprocessor", "bert-tokenizer").options.model_fields) == {
        "path",
        *tokenizer_options,
    }


def test_entry_point_is_discovered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPLUG_LOAD_PLUGINS", "text")
    loaded = kplug.load_plugins()
    assert loaded.failures == []
    assert {"bert", "distilbert", "minilm-l6"} <= set(loaded.registry.names("backbone"))
    assert {"bert-tokenizer", "distilbert-tokenizer", "minilm-l6-tokenizer"} <= set(
        loaded.registry.names("preprocessor")
    )
    assert loaded.registry.get("backbone", "minilm-l6").provider.startswith("kplug-text 0.1.0")
