"""Resuming a run: the run it continues must be the same run, and must have something left to train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kplug.config.load import parse_config, read_config_file
from kplug.config.schema import RunConfig
from kplug.errors import ConfigError
from kplug.train.checkpoint import Checkpoint, latest_checkpoint

# Fields that may differ when a run is resumed: where it writes and how it reports.
RESUMABLE_CHANGES = ("output.", "train.verbose", "callbacks")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _saved_config(saved: Path) -> dict[str, Any]:
    """The run's saved config as this version writes it (older spellings, e.g. a stage's
    ``learning_rate``, moved to their current place); as written if it no longer validates."""
    written = read_config_file(saved)
    try:
        return parse_config(written).to_dict()
    except ConfigError:
        return written


def check_same_run(saved: Path, config: RunConfig) -> None:
    """Refuse to resume a run directory with a config that trains something else."""
    before = _flatten(_saved_config(saved))
    now = _flatten(config.to_dict())
    changed = [
        key
        for key in sorted(set(before) | set(now))
        if not key.startswith(RESUMABLE_CHANGES) and before.get(key) != now.get(key)
    ]
    if changed:
        shown = "; ".join(
            f"{key}: {before.get(key)!r} in the run, {now.get(key)!r} now" for key in changed[:6]
        )
        raise ConfigError(
            f"--resume {str(saved.parent)!r}: the config differs from the one the run was started with "
            f"({shown}). Resume with the run's own config (kplug train --resume RUN_DIR) or start a new run."
        )


def checkpoint_to_resume(run_dir: Path, stages: int) -> Checkpoint | None:
    """The newest checkpoint of ``run_dir`` (``None``: none yet, the run starts over).

    Raises:
        ConfigError: the checkpoint is past the last of the ``stages``: the run has finished.
    """
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None and checkpoint.state.stage >= stages:
        raise ConfigError(
            f"--resume {str(run_dir)!r}: the run has finished all {stages} stage(s); nothing to resume."
        )
    return checkpoint
