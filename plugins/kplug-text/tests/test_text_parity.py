"""all-MiniLM-L6-v2 loaded offline through keras-hub matches the PyTorch reference to 1e-4.

The reference (transformers' BertModel mean-pooled, and sentence-transformers' whole
pipeline) is computed in a subprocess from the installed model files on every run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from text_data import DATA, read_column

import kplug_text

TOLERANCE = 1e-4
SENTENCES = DATA / "sentences.tsv"


@pytest.fixture(scope="module")
def reference(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("reference") / "reference.npz"
    offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env = {**os.environ, **offline}
    script = Path(__file__).parent / "reference_embeddings.py"
    subprocess.run(
        [sys.executable, str(script), str(minilm_dir), str(SENTENCES), str(out)],
        check=True,
        env=env,
        capture_output=True,
        timeout=600,
    )
    with np.load(out) as archive:
        return dict(archive)


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    preprocess = kplug_text.minilm_l6_preprocessor(sequence_length=64)
    return preprocess(read_column(SENTENCES))


@pytest.fixture(scope="module")
def minilm() -> keras.Model:
    return kplug_text.minilm_l6()


def embed(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))


def normalized(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def test_ten_real_sentences() -> None:
    assert len(read_column(SENTENCES)) == 10


def test_tokens_match_the_hugging_face_tokenizer(
    inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    width = reference["token_ids"].shape[1]  # the reference pads to the longest sentence
    assert width < 64 and not inputs["token_ids"][:, width:].any()
    np.testing.assert_array_equal(inputs["token_ids"][:, :width], reference["token_ids"])
    np.testing.assert_array_equal(inputs["padding_mask"], (inputs["token_ids"] != 0).astype("int32"))
    assert not inputs["segment_ids"].any()


def test_mean_pooled_embeddings_match_transformers(
    minilm: keras.Model, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    embeddings = embed(minilm, inputs)
    assert embeddings.shape == (10, 384)
    assert np.abs(embeddings - reference["mean"]).max() < TOLERANCE


def test_normalized_embeddings_match_sentence_transformers(
    minilm: keras.Model, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    embeddings = normalized(embed(minilm, inputs))
    assert np.abs(embeddings - reference["sentence_transformers"]).max() < TOLERANCE


def test_the_loaded_encoder_uses_the_checkpoints_exact_gelu(minilm: keras.Model) -> None:
    encoder = minilm.get_layer("encoder")
    assert isinstance(encoder, kplug_text.BertEncoder)
    assert encoder.activation == "gelu"  # config.json hidden_act: gelu (erf)
    x = np.linspace(-3.0, 3.0, 13).astype("float32")
    for layer in encoder.transformer_layers:
        dense = layer._feedforward_intermediate_dense
        got = keras.ops.convert_to_numpy(dense.activation(x))
        exact = keras.ops.convert_to_numpy(keras.activations.gelu(x, approximate=False))
        np.testing.assert_allclose(got, exact, atol=1e-7)


@pytest.mark.slow
def test_parity_catches_keras_hubs_approximate_gelu(
    inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]
) -> None:
    # keras-hub's default tanh GELU: the regression this parity test exists to catch
    approximate = kplug_text.minilm_l6(activation="gelu_approximate")
    difference = np.abs(embed(approximate, inputs) - reference["mean"]).max()
    assert difference > 5 * TOLERANCE


def test_a_saved_model_keeps_the_exact_gelu(
    minilm: keras.Model, inputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], tmp_path: Path
) -> None:
    minilm.save(tmp_path / "minilm.keras")
    loaded = keras.saving.load_model(tmp_path / "minilm.keras", compile=False, safe_mode=True)
    assert loaded.get_layer("encoder").activation == "gelu"
    assert np.abs(embed(loaded, inputs) - reference["mean"]).max() < TOLERANCE
