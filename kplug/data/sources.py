"""Read a run's examples through its dataset component, then filter, limit and split them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kplug.config.schema import DataConfig
from kplug.data.example_set import Examples
from kplug.data.splits import SplitIndices, split_indices
from kplug.data.streams import Stream
from kplug.errors import DataError, KplugError, PluginError, first_line
from kplug.plugin.registry import Component


def read_examples(component: Component, options: dict[str, Any]) -> Examples | Stream:
    """Call a dataset component and check that it returned ``Examples`` (or a ``Stream``)."""
    try:
        examples = component.factory(**options)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as error:
        raise DataError(
            f"data: {component.name} could not read {error.filename!r}: {error.strerror}."
        ) from None
    except KplugError:
        raise
    except (ValueError, TypeError, OSError, UnicodeError) as error:
        raise DataError(
            f"data: {component.name} could not read its data ({_shown(options)}): "
            f"{type(error).__name__}: {first_line(error)}"
        ) from None
    except Exception as error:  # a bug in the source's plugin, reported with its provider
        raise PluginError(
            f"data: dataset '{component.name}' ({component.provider}) raised {type(error).__name__}: "
            f"{first_line(error)}. Run with --debug for the traceback."
        ) from error
    if isinstance(examples, Stream):
        return examples
    if not isinstance(examples, Examples):
        raise PluginError(
            f"Dataset '{component.name}' ({component.provider}) returned "
            f"{type(examples).__name__}; a dataset factory must return kplug.Examples (or a Stream)."
        )
    if len(examples) == 0:
        raise DataError(f"data: {component.name} read no examples ({_shown(options)}).")
    return examples


def read_all(component: Component, options: dict[str, Any]) -> Examples:
    """``read_examples``, with a stream read into memory (held-out data, data to predict on)."""
    examples = read_examples(component, options)
    return examples.to_examples() if isinstance(examples, Stream) else examples


def _shown(options: dict[str, Any]) -> str:
    """Options as ``key=value`` for messages, with in-memory arrays summarised."""
    parts = []
    for key, value in options.items():
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            parts.append(f"{key}=<array {value.dtype} {tuple(value.shape)}>")
        elif isinstance(value, (list, tuple)) and len(value) > 8:
            parts.append(f"{key}=<{len(value)} values>")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts) or "no options"


def merge_examples(parts: dict[str, Examples]) -> Examples:
    """Concatenate the examples of several sources; target ``source`` names each row's source."""
    first_name, first = next(iter(parts.items()))
    for name, part in parts.items():
        if part.features.shape[1:] != first.features.shape[1:]:
            raise DataError(
                f"data.sources: '{name}' has features of shape {part.features.shape[1:]}, "
                f"'{first_name}' {first.features.shape[1:]}; merged sources need the same shape."
            )
        if set(part.targets) != set(first.targets):
            raise DataError(
                f"data.sources: '{name}' has targets {sorted(part.targets)}, '{first_name}' "
                f"{sorted(first.targets)}; merged sources need the same targets."
            )
    names = {
        t: first.label_names[t]
        for t in first.label_names
        if all(p.label_names.get(t) == first.label_names[t] for p in parts.values())
    }
    targets = {t: np.concatenate([p.targets[t] for p in parts.values()]) for t in first.targets}
    targets["source"] = np.concatenate([np.full(len(p), name) for name, p in parts.items()])
    return Examples(np.concatenate([p.features for p in parts.values()]), targets, names)


def _matches(values: np.ndarray, wanted: list[Any]) -> np.ndarray:
    numeric = values.dtype.kind in "iuf" and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) for w in wanted
    )
    if numeric:
        return np.isin(values, np.asarray(wanted))
    return np.isin(values.astype(str), np.asarray([str(w) for w in wanted]))


def select_examples(examples: Examples, config: DataConfig, seed: int) -> Examples:
    """Apply ``data.where`` (keep rows with these target values) and ``data.limit``."""
    keep = np.ones(len(examples), dtype=bool)
    for target, wanted in config.where.items():
        if target not in examples.targets:
            raise DataError(
                f"data.where.{target}: the data has no target '{target}'; "
                f"targets: {', '.join(examples.targets) or 'none'}."
            )
        values = examples.targets[target]
        absent = [w for w in wanted if not _matches(values, [w]).any()] if values.ndim == 1 else []
        if absent:
            present = sorted({str(v) for v in values.tolist()})
            shown = ", ".join(present[:20]) + (", ..." if len(present) > 20 else "")
            verdict = "no example matches" if len(absent) == len(wanted) else "a value matches no example"
            raise DataError(
                f"data.where.{target}: {verdict} ({', '.join(map(repr, absent))}); "
                f"the values of '{target}' in the data are {shown}."
            )
        keep &= _matches(values, wanted)
    if not keep.any():
        raise DataError(f"data.where = {config.where}: no example matches.")
    indices = np.flatnonzero(keep)
    if config.limit is not None and config.limit < len(indices):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(indices, size=config.limit, replace=False))
    return examples.take(indices)


@dataclass
class SplitExamples:
    """The examples of each split."""

    train: Examples
    validation: Examples
    test: Examples
    indices: SplitIndices

    @classmethod
    def train_only(cls, examples: Examples) -> SplitExamples:
        """Every example for training, none held out (a stream, which is not split)."""
        none = np.zeros(0, dtype="int64")
        return cls(
            examples,
            examples.take(none),
            examples.take(none),
            SplitIndices(np.arange(len(examples)), none, none),
        )


def split_examples(
    examples: Examples, config: DataConfig, seed: int, strata: np.ndarray | None
) -> SplitExamples:
    """Split examples per ``data.split`` with the run seed."""
    split = config.split
    held_out = sum(int(n) for n in (split.validation, split.test) if n >= 1)
    if held_out >= len(examples):
        raise DataError(
            f"data.split holds out {held_out} examples (validation {split.validation:g}, test "
            f"{split.test:g}) but there are only {len(examples)}; leave some for training."
        )
    indices = split_indices(
        len(examples), split.validation, split.test, seed, strata if split.stratify else None
    )
    if len(indices.train) == 0:
        raise DataError(
            f"data.split leaves no training examples out of {len(examples)}; "
            f"lower split.validation / split.test or raise data.limit."
        )
    return SplitExamples(
        examples.take(indices.train),
        examples.take(indices.validation),
        examples.take(indices.test),
        indices,
    )
