"""Tokenisation on tf.data: the ids Hugging Face's tokenizer gives, pairs, padding, bad input."""

from __future__ import annotations

from pathlib import Path

import kplug
import numpy as np
import pytest
from tokenizers import Tokenizer

import kplug_text


@pytest.fixture(scope="module")
def hf_tokenizer() -> Tokenizer:
    """Hugging Face's own (Rust) tokenizer of all-MiniLM-L6-v2, from its tokenizer.json."""
    from kplug_text.checkpoints import minilm_path

    tokenizer = Tokenizer.from_file(str(minilm_path() / "tokenizer.json"))
    tokenizer.no_padding()  # the file pads to 128; compare the real tokens
    return tokenizer


@pytest.mark.parametrize("eager_limit", [2048, 0], ids=["eager", "tf.data"])
def test_accents_case_and_punctuation_as_hugging_face(hf_tokenizer: Tokenizer, eager_limit: int) -> None:
    texts = ["Café naïve RÉSUMÉ, wasn't it?", "It #39;s over... 80GB (1.8-inch) drives!", ""]
    preprocessor = kplug_text.minilm_l6_preprocessor(sequence_length=32)
    preprocessor.eager_limit = eager_limit
    got = preprocessor(np.asarray(texts))
    for row, text in enumerate(texts):
        expected = hf_tokenizer.encode(text).ids
        assert got["token_ids"][row, : len(expected)].tolist() == expected
        assert got["padding_mask"][row].tolist() == [1] * len(expected) + [0] * (32 - len(expected))


def test_pairs_get_segment_ids_and_round_robin_truncation(hf_tokenizer: Tokenizer) -> None:
    pairs = np.asarray([["a short premise", "and a much longer hypothesis " * 4]])
    got = kplug_text.minilm_l6_preprocessor(sequence_length=12)(pairs)
    tokens = got["token_ids"][0].tolist()
    first, second = (hf_tokenizer.encode(text, add_special_tokens=False).ids for text in pairs[0])
    # [CLS], 3 premise tokens, [SEP], the hypothesis cut to 6 tokens, [SEP]: 12
    assert tokens == [101, *first, 102, *second[:6], 102]
    assert got["segment_ids"][0].tolist() == [0] * 5 + [1] * 7
    assert got["padding_mask"][0].all()


def test_shapes_and_dtypes(vocabulary: str) -> None:
    texts = np.asarray(["one", "two words", "three words here"])
    got = kplug_text.bert_preprocessor(vocabulary=vocabulary, sequence_length=16)(texts)
    assert set(got) == {"token_ids", "segment_ids", "padding_mask"}
    assert all(value.shape == (3, 16) and value.dtype == np.int32 for value in got.values())
    assert got["padding_mask"].sum(axis=1).tolist() == [3, 4, 5]  # [CLS] ... [SEP]


def test_distilbert_inputs_have_no_segment_ids(vocabulary: str) -> None:
    got = kplug_text.distilbert_preprocessor(vocabulary=vocabulary, sequence_length=8)(np.asarray(["hi"]))
    assert set(got) == {"token_ids", "padding_mask"}
    assert got["token_ids"][0, :3].tolist() == [101, 7632, 102]


def test_object_arrays_of_strings_are_text(vocabulary: str) -> None:
    texts = np.asarray(["good", "bad"], dtype=object)
    got = kplug_text.bert_preprocessor(vocabulary=vocabulary, sequence_length=4)(texts)
    assert got["token_ids"][:, 1].tolist() == [2204, 2919]


def test_numbers_are_refused_with_the_fix(vocabulary: str) -> None:
    preprocess = kplug_text.bert_preprocessor(vocabulary=vocabulary)
    with pytest.raises(kplug.DataError, match="text: true"):
        preprocess(np.zeros((4, 3), "float32"))
    with pytest.raises(kplug.DataError, match="shape"):
        preprocess(np.asarray([["a", "b", "c"]]))


def test_random_init_needs_a_vocabulary(tmp_path: Path) -> None:
    with pytest.raises(kplug.ConfigError, match="vocabulary"):
        kplug_text.bert_preprocessor()
    with pytest.raises(kplug.ConfigError, match="no such file"):
        kplug_text.bert_preprocessor(vocabulary=str(tmp_path / "vocab.txt"))
