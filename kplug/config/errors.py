"""Turn a pydantic ``ValidationError`` into lines a user can act on.

One formatter serves the run config (``kplug.config.load``) and every
component's options (``kplug.plugin.options``): each line names the field path
(``train.stages[1].learning_rate``), the value found there and what is allowed.
"""

from __future__ import annotations

import typing
from typing import Any

import pydantic
from pydantic import BaseModel

from kplug.errors import did_you_mean

# Tags pydantic adds to error locations for union members (discriminated unions use the tag value).
_UNION_TAGS = frozenset(
    {"float", "int", "categorical", "str", "bool", "bytes", "none", "list", "dict", "tuple", "literal"}
)


def _field_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds union member tags such as "literal['all']" or "list[str]" to locations
    return tuple(
        part
        for part in loc
        if isinstance(part, int) or not (any(c in part for c in "[]'(") or part in _UNION_TAGS)
    )


def _location(loc: tuple[Any, ...], where: str = "") -> str:
    path = where
    for part in loc:
        if isinstance(part, int) or (isinstance(part, str) and "." in part):
            path += f"[{part!r}]"  # a list index, or a key holding dots (a tune.space path)
        else:
            path += f".{part}" if path else str(part)
    return path or "<config>"


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return data


def _allowed_fields(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model: Any = schema
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        annotation = field.annotation
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            if typing.get_origin(candidate) is typing.Annotated:  # a tagged union member
                candidate = typing.get_args(candidate)[0]
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            return []
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _short(value: Any, limit: int = 120) -> str:
    """``repr`` of a value, cut to ``limit`` characters (a whole section can be the value)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def validation_problems(
    error: pydantic.ValidationError,
    data: Any,
    *,
    where: str = "",
    schema: type[BaseModel] | None = None,
) -> list[str]:
    """One line per invalid field: ``path = value: what is allowed``.

    Args:
        error: what pydantic raised when validating ``data``.
        data: the validated input (the value of each bad field is looked up in it).
        where: the config path ``data`` sits at, e.g. ``model.backbone.options`` ("" for the root).
        schema: the model ``data`` was validated against; given, an unknown field is reported
            with the fields allowed there, a missing one as "required field is missing" and a
            non-mapping section with the fields it takes. Without it, pydantic's own message.

    Example::

        validation_problems(error, {"train": {"batch_size": 0}}, schema=RunConfig)
        # ["train.batch_size = 0: Input should be greater than 0"]
    """
    problems: dict[str, list[str]] = {}
    for item in error.errors():
        loc = _field_loc(item["loc"])
        path = _location(loc, where)
        if schema is not None and item["type"] == "extra_forbidden":
            allowed = [f for f in _allowed_fields(schema, loc) if not f.endswith("_")]
            hint = did_you_mean(str(loc[-1]), allowed)
            problems.setdefault(f"{path}: unknown field.{hint} Allowed fields here: {', '.join(allowed)}", [])
        elif schema is not None and item["type"] == "missing":
            problems.setdefault(f"{path}: required field is missing", [])
        else:
            message = item["msg"].replace("Value error, ", "")
            if schema is not None and item["type"] in ("model_type", "model_attributes_type", "dict_type"):
                fields = [f for f in _allowed_fields(schema, (*loc, "")) if not f.endswith("_")]
                message = "expected a mapping" + (f" with the fields {', '.join(fields)}" if fields else "")
            messages = problems.setdefault(f"{path} = {_short(_lookup(data, loc))}:", [])
            if message not in messages:
                messages.append(message)
    return [f"{head} {' or '.join(messages)}" if messages else head for head, messages in problems.items()]


def format_validation_error(error: pydantic.ValidationError, data: Any, schema: type[BaseModel]) -> str:
    """The error message of an invalid run config: one line per field, path, value and what is allowed."""
    return "Invalid run config:\n  " + ".\n  ".join(validation_problems(error, data, schema=schema)) + "."
