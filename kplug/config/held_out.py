"""Validation and test examples handed to ``kplug.fit`` as arrays (``validation_data=(x, y)``)."""

from __future__ import annotations

from typing import Any

from kplug.config.schema import HeldOutConfig, RunConfig
from kplug.errors import ConfigError


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iloc")


def arrays_options(split: str, given: Any) -> dict[str, Any]:
    """The ``arrays`` source's options for ``(x, y)``, ``(x, y, targets)`` or a dict of them.

    Raises:
        ConfigError: naming the argument and what it accepts.
    """
    if isinstance(given, dict):
        return dict(given)
    if isinstance(given, (tuple, list)) and len(given) in (2, 3):
        return dict(zip(("x", "y", "targets"), given, strict=False))
    raise ConfigError(
        f"{split}_data: expected (x, y), (x, y, targets), a dict with x and y (the arrays source's "
        f"options) or a pandas DataFrame; got {type(given).__name__}."
    )


def with_held_out_arrays(config: RunConfig, **splits: Any) -> RunConfig:
    """``config`` with ``data.validation`` / ``data.test`` read from the given arrays or DataFrames.

    Example::

        with_held_out_arrays(config, validation=(x_val, y_val), test=None)
    """
    data = config.data
    changes = {}
    for split, given in splits.items():
        if given is None:
            continue
        if getattr(data.split, split):
            raise ConfigError(
                f"{split}_data: data.split.{split} = {getattr(data.split, split):g} also draws {split} "
                f"examples from the data; set it to 0 or leave {split}_data out."
            )
        if _is_frame(given):  # read like the training frame: same columns, same categories
            options = {**(data.options if data.source == "dataframe" else {}), "frame": given}
            changes[split] = HeldOutConfig(source="dataframe", options=options)
            continue
        if "data" in data.options and not isinstance(given, (tuple, list, dict)):
            # an object (a stream) read by the training data's own source
            changes[split] = HeldOutConfig(source=data.source, options={**data.options, "data": given})
            continue
        changes[split] = HeldOutConfig(source="arrays", options=arrays_options(split, given))
    if not changes:
        return config
    return config.model_copy(update={"data": data.model_copy(update=changes)})
