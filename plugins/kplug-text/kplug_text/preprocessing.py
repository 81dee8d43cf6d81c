"""Tokenisation: raw text to the integer inputs of a text backbone, on tf.data, for every backend.

keras-hub's tokenizers and packers are TensorFlow (tf.text) ops. kplug applies a backbone's
preprocessor once to every split before training, so the text is tokenised here in batches
on a ``tf.data`` pipeline and handed back as NumPy arrays, which JAX, TensorFlow and PyTorch
all train from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import keras_hub
import numpy as np
from kplug.plugin import ConfigError, DataError

from kplug_text.checkpoints import Checkpoint

Truncate = Literal["round_robin", "waterfall"]

# (tokenizer class, classifier preprocessor class) per family
FAMILIES = {
    "bert": (keras_hub.models.BertTokenizer, keras_hub.models.BertTextClassifierPreprocessor),
    "distilbert": (
        keras_hub.models.DistilBertTokenizer,
        keras_hub.models.DistilBertTextClassifierPreprocessor,
    ),
}


def build_tokenizer(
    family: str,
    checkpoint: Checkpoint | None,
    vocabulary: str | None,
    lowercase: bool | None,
    option: str,
) -> Any:
    """The family's WordPiece tokenizer from a checkpoint directory or a ``vocab.txt`` file.

    Args:
        family: ``"bert"`` or ``"distilbert"``.
        checkpoint: the checkpoint read from ``options.path`` (``None`` for a random-init model).
        vocabulary: a ``vocab.txt`` file, overriding the checkpoint's.
        lowercase: lowercase (and strip accents) before splitting; ``None``: the checkpoint's
            setting, or True without a checkpoint.
        option: the config field holding the backbone options, for error messages.
    """
    tokenizer_class = FAMILIES[family][0]
    if checkpoint is not None and checkpoint.hf_config is None and vocabulary is None:
        kwargs = {} if lowercase is None else {"lowercase": lowercase}
        return tokenizer_class.from_preset(str(checkpoint.path), **kwargs)
    if vocabulary is None:
        if checkpoint is None:
            raise ConfigError(
                f"{option}.vocabulary: a {family} model without a checkpoint (options.path) needs a "
                f"WordPiece vocab.txt file."
            )
        vocabulary = str(checkpoint.path / "vocab.txt")
    if not Path(vocabulary).is_file():
        raise ConfigError(f"{option}.vocabulary = {vocabulary!r}: no such file (expected a vocab.txt).")
    if lowercase is None:
        lower = checkpoint.lowercase() if checkpoint is not None else True
        strip = checkpoint.strip_accents() if checkpoint is not None else lower
    else:
        lower = strip = lowercase
    return tokenizer_class(vocabulary=vocabulary, lowercase=lower, strip_accents=strip)


class TextPreprocessor:
    """Raw text of N examples to a backbone's inputs for N examples.

    Features are an array of N strings (one segment) or N x 2 strings (a pair of segments,
    e.g. premise and hypothesis), as kplug's csv/tsv readers return with ``text: true``.

    Every example is padded (or truncated) to ``sequence_length`` tokens, so every split,
    and any data given to ``kplug evaluate`` / ``kplug predict``, has the shape the model
    was built with.

    Args:
        packer: a keras-hub text classifier preprocessor (tokenizer + packer).
        batch_size: examples tokenised per tf.data batch.
    """

    def __init__(self, packer: Any, batch_size: int = 512) -> None:
        self.packer = packer
        self.batch_size = batch_size

    @property
    def sequence_length(self) -> int:
        return int(self.packer.sequence_length)

    def __call__(self, features: Any) -> dict[str, np.ndarray]:
        """Tokenise ``features`` (N strings or N x 2 strings).

        Returns:
            ``{"token_ids": int32[N, L], "padding_mask": int32[N, L], ...}`` (BERT adds
            ``segment_ids``).

        Raises:
            DataError: the features are not text.
        """
        import tensorflow as tf

        segments = _segments(features)
        dataset = tf.data.Dataset.from_tensor_slices(tuple(segments))
        dataset = dataset.batch(self.batch_size).map(
            # keyword x: keras-hub reads a positional tuple as (x, y)
            lambda *texts: self.packer(x=texts if len(texts) > 1 else texts[0]),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        parts: dict[str, list[np.ndarray]] = {}
        for batch in dataset.as_numpy_iterator():
            for key, value in batch.items():
                parts.setdefault(key, []).append(value.astype("int32"))
        width = self.sequence_length
        if not parts:
            return {key: np.zeros((0, width), "int32") for key in self.input_names()}
        return {key: np.concatenate(values) for key, values in parts.items()}

    def input_names(self) -> list[str]:
        """The keys this preprocessor returns."""
        if isinstance(self.packer, keras_hub.models.BertTextClassifierPreprocessor):
            return ["token_ids", "segment_ids", "padding_mask"]
        return ["token_ids", "padding_mask"]


def _segments(features: Any) -> list[np.ndarray]:
    values = np.asarray(features)
    if values.dtype.kind == "O":
        if not all(isinstance(value, str) for value in values.reshape(-1)):
            raise DataError(_not_text(values))
        values = values.astype(str)
    if values.dtype.kind not in "US":
        raise DataError(_not_text(values))
    if values.ndim == 1:
        return [values]
    if values.ndim == 2 and values.shape[1] in (1, 2):
        return [values[:, column] for column in range(values.shape[1])]
    raise DataError(
        f"data: a text backbone takes one text column (N strings) or two (N x 2 strings, a pair "
        f"of segments); got features of shape {values.shape}. Choose the columns with "
        f"data.options.features."
    )


def _not_text(values: np.ndarray) -> str:
    return (
        f"data: a text backbone takes text features (strings); got {values.dtype} features of "
        f"shape {values.shape}. Read the file with data.options.text: true and pick the text "
        f"column with data.options.features."
    )


def build_preprocessor(
    family: str, tokenizer: Any, sequence_length: int, truncate: Truncate
) -> TextPreprocessor:
    """A ``TextPreprocessor`` packing ``tokenizer``'s output as the family's backbone expects."""
    packer_class = FAMILIES[family][1]
    packer = packer_class(tokenizer=tokenizer, sequence_length=sequence_length, truncate=truncate)
    return TextPreprocessor(packer)
