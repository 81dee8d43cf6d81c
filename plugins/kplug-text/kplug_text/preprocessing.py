"""Tokenisation: raw text to the integer inputs of a text backbone, on tf.data, for every backend.

The preprocessor components ``bert-tokenizer``, ``distilbert-tokenizer`` and
``minilm-l6-tokenizer`` own the tokenizer options (vocabulary, case, sequence length,
truncation); the backbones own only the model's.

keras-hub's tokenizers and packers are TensorFlow (tf.text) ops. kplug applies the
preprocessor once to every split before training, so the text is tokenised here in batches
on a ``tf.data`` pipeline and handed back as NumPy arrays, which JAX, TensorFlow and PyTorch
all train from. keras-hub (and with it TensorFlow) is imported when a preprocessor is built,
not when the plugin registers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from kplug.plugin import ConfigError, DataError
from pydantic import PositiveInt

from kplug_text.checkpoints import Checkpoint, minilm_path, read_checkpoint

Truncate = Literal["round_robin", "waterfall"]
OPTION = "model.preprocessor.options"
# the model inputs each family's packer returns
INPUT_NAMES = {
    "bert": ["token_ids", "segment_ids", "padding_mask"],
    "distilbert": ["token_ids", "padding_mask"],
}


def family_classes(family: str) -> tuple[Any, Any]:
    """The family's keras-hub (tokenizer class, text classifier preprocessor class)."""
    import keras_hub

    if family == "bert":
        return keras_hub.models.BertTokenizer, keras_hub.models.BertTextClassifierPreprocessor
    return keras_hub.models.DistilBertTokenizer, keras_hub.models.DistilBertTextClassifierPreprocessor


def family_checkpoint(family: str, path: str | None, option: str) -> Checkpoint | None:
    """The checkpoint directory at ``path`` (``None`` without one), refused if it holds another family.

    Args:
        family: ``"bert"`` or ``"distilbert"``.
        path: the ``path`` option.
        option: the config field holding the options, for error messages.
    """
    if path is None:
        return None
    checkpoint = read_checkpoint(path, f"{option}.path")
    model_types = (family,)
    if checkpoint.model_type is not None and checkpoint.model_type not in model_types:
        raise ConfigError(
            f"{option}.path = {path!r} holds a {checkpoint.model_type!r} checkpoint; the {family} "
            f"backbone loads model_type {' or '.join(repr(t) for t in model_types)}."
        )
    return checkpoint


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
    tokenizer_class = family_classes(family)[0]
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
        eager_limit: up to this many examples are tokenised in one eager call instead of on a
            tf.data pipeline, whose map is traced on every call (about 0.6 CPU-s, ten times the
            eager cost for 300 phrases); larger inputs take the pipeline, which is faster per
            example (measured on 12,000 SST-2 phrases: 0.7-1.0 CPU-s against 2.3). Both give
            the same token ids.
    """

    def __init__(
        self, packer: Any, family: str = "bert", batch_size: int = 512, eager_limit: int = 2048
    ) -> None:
        self.packer = packer
        self.family = family
        self.batch_size = batch_size
        self.eager_limit = eager_limit

    @property
    def sequence_length(self) -> int:
        """Tokens per example (special tokens included)."""
        return int(self.packer.sequence_length)

    def vocabulary_size(self) -> int:
        """Token ids run from 0 to this size minus one: a random-init encoder's embedding rows."""
        return int(self.packer.tokenizer.vocabulary_size())

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
        if 0 < len(segments[0]) <= self.eager_limit:
            # a few batches: running the tf.text ops eagerly costs less than tracing the map
            texts = tuple(tf.constant(segment) for segment in segments)
            packed = self.packer(x=texts if len(texts) > 1 else texts[0])
            return {key: np.asarray(value).astype("int32") for key, value in packed.items()}
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
        return list(INPUT_NAMES[self.family])


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
    packer_class = family_classes(family)[1]
    packer = packer_class(tokenizer=tokenizer, sequence_length=sequence_length, truncate=truncate)
    return TextPreprocessor(packer, family)


def family_preprocessor(
    family: str,
    path: str | None,
    vocabulary: str | None,
    lowercase: bool | None,
    sequence_length: int,
    truncate: Truncate,
) -> TextPreprocessor:
    """The family's tokenizer from a checkpoint or a vocabulary, packing to ``sequence_length`` tokens."""
    checkpoint = family_checkpoint(family, path, OPTION)
    positions = checkpoint.max_sequence_length() if checkpoint is not None else None
    if positions is not None and sequence_length > positions:
        raise ConfigError(
            f"{OPTION}.sequence_length = {sequence_length}: the checkpoint at {checkpoint.path} has "
            f"{positions} positions; use at most that."
        )
    tokenizer = build_tokenizer(family, checkpoint, vocabulary, lowercase, OPTION)
    return build_preprocessor(family, tokenizer, sequence_length, truncate)


def bert_preprocessor(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """BERT's WordPiece tokenizer: text to ``token_ids``, ``segment_ids``, ``padding_mask``.

    Args:
        path: a local checkpoint directory (Hugging Face BERT files or a keras-hub preset) whose
            vocabulary and case settings to use; the backbone's ``path`` when it has one.
        vocabulary: a WordPiece ``vocab.txt`` (needed without ``path``; overrides the checkpoint's).
        lowercase: lowercase and strip accents before tokenising; unset: the checkpoint's
            ``do_lower_case`` (True without a checkpoint).
        sequence_length: tokens per example, ``[CLS]`` and ``[SEP]`` included; longer texts are
            truncated, shorter ones padded to it.
        truncate: how a pair of segments is cut to fit: ``round_robin`` or ``waterfall``.
    """
    return family_preprocessor("bert", path, vocabulary, lowercase, sequence_length, truncate)


def distilbert_preprocessor(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """DistilBERT's WordPiece tokenizer: text to ``token_ids`` and ``padding_mask`` (options as BERT's)."""
    return family_preprocessor("distilbert", path, vocabulary, lowercase, sequence_length, truncate)


def minilm_l6_preprocessor(
    path: str | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """all-MiniLM-L6-v2's tokenizer (its own uncased WordPiece vocabulary); ``path``: its files."""
    return bert_preprocessor(
        path=str(path or minilm_path()), sequence_length=sequence_length, truncate=truncate
    )
