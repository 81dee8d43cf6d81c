"""Validate a component's config ``options`` against its factory's signature.

A factory's keyword parameters are its options. They are turned into a pydantic
model (or a plugin supplies its own model) so options are type-checked and a
misspelled option is reported with the list of valid ones.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic

from kplug.config.errors import validation_problems
from kplug.errors import ConfigError, did_you_mean

# Arguments that kplug supplies itself when the factory accepts them; users do not set them.
INJECTED_ARGUMENTS = frozenset({"input_shape", "preprocessor", "run_dir", "run_config", "plugins", "head"})


def _signature_target(factory: Callable[..., Any]) -> Callable[..., Any]:
    """The callable whose signature holds a factory's options (a class's ``__init__``)."""
    return factory.__init__ if inspect.isclass(factory) else factory


def factory_parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """Return the user-settable parameters of ``factory`` (a function or a class)."""
    target = _signature_target(factory)
    parameters = inspect.signature(target).parameters
    return {
        name: parameter
        for name, parameter in parameters.items()
        if name not in ("self", "cls")
        and name not in INJECTED_ARGUMENTS
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }


def accepts_argument(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` takes a keyword argument called ``name``."""
    target = _signature_target(factory)
    parameters = inspect.signature(target).parameters
    return name in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def options_model(factory: Callable[..., Any], name: str) -> type[pydantic.BaseModel]:
    """Build a pydantic model of ``factory``'s keyword options (unknown options forbidden)."""
    target = _signature_target(factory)
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations: validate names, not types
        hints = {}
    fields: dict[str, Any] = {}
    for option, parameter in factory_parameters(factory).items():
        annotation = hints.get(option, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[option] = (annotation, default)
    config = pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    return pydantic.create_model(f"{name}_options", __config__=config, **fields)


def describe_options(model: type[pydantic.BaseModel]) -> str:
    """Return ``"units (int, default 64), rate (float, required)"`` for an options model."""
    parts = []
    for option, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is typing.Literal:
            type_name = " | ".join(repr(value) for value in typing.get_args(annotation))
        else:
            type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        default = "required" if field.is_required() else f"default {field.default!r}"
        parts.append(f"{option} ({type_name}, {default})")
    return ", ".join(parts) if parts else "none"


def validate_options(
    component_name: str,
    model: type[pydantic.BaseModel],
    options: dict[str, Any],
    where: str,
) -> dict[str, Any]:
    """Validate ``options`` for a component; return them with defaults filled in.

    Args:
        component_name: the registered name, used in messages.
        model: the options model (see ``options_model``).
        options: the user's options.
        where: the config path of the options, e.g. ``model.backbone.options``.

    Raises:
        ConfigError: naming the option, the value and what is allowed.
    """
    allowed = describe_options(model)
    for option in options:
        if option not in model.model_fields:
            hint = did_you_mean(option, model.model_fields)
            raise ConfigError(
                f"{where}: {component_name} has no option '{option}'.{hint} Options: {allowed}."
            )
    try:
        validated = model.model_validate(options)
    except pydantic.ValidationError as error:
        shown = "; ".join(validation_problems(error, options, where=where))
        raise ConfigError(f"{shown}. {component_name} options: {allowed}.") from None
    return {key: getattr(validated, key) for key in model.model_fields}
