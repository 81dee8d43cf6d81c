"""Reference embeddings of the parity test, computed with PyTorch libraries in their own process.

Usage: ``python reference_embeddings.py MODEL_DIR SENTENCES.tsv OUT.npz``

Writes ``token_ids`` (Hugging Face tokenizer, padded with 0), ``mean`` (transformers'
``BertModel`` last hidden state, mean-pooled over real tokens as sentence-transformers does)
and ``sentence_transformers`` (``SentenceTransformer.encode``: mean pooling then L2
normalisation, the model's whole pipeline). Run apart from the test so that torch and the
Keras backend under test never share a process.
"""

from __future__ import annotations

import csv
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer


def main(model_dir: str, sentences_file: str, out: str) -> None:
    with open(sentences_file, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    sentences = [row[0] for row in rows[1:]]
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    encoded = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    encoder = SentenceTransformer(model_dir, device="cpu")
    embeddings = encoder.encode(sentences, convert_to_numpy=True)
    np.savez(
        out,
        token_ids=encoded["input_ids"].numpy().astype("int32"),
        mean=mean.numpy(),
        sentence_transformers=embeddings,
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
