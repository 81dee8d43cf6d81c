"""The Keras optimizers a run config can name, and the checks on each one's own options.

``train.optimizer.name`` is any optimizer class of ``keras.optimizers`` by its lower-case
name (``adam``, ``adamw``, ``sgd``, ``rmsprop``, ``lion``, ``adafactor``, ``nadam``, ``lamb``,
...), and ``train.optimizer.options`` holds that class's own constructor arguments
(``beta_1``, ``epsilon``, ``nesterov``, ...), checked against its signature. The settings
kplug manages for every optimizer (learning rate and schedule, weight decay, clipnorm,
gradient accumulation, momentum) are fields of ``train.optimizer`` rather than options.

Keras is imported the first time a name is checked, not when the schema is imported.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import pydantic

from kplug.errors import did_you_mean

# Fields of train.optimizer (kplug sets these arguments itself).
MANAGED = ("learning_rate", "weight_decay", "clipnorm", "gradient_accumulation_steps", "momentum")
# Constructor arguments that are not settings of the optimizer's update rule.
NOT_OPTIONS = frozenset({"self", "name", "kwargs", "loss_scale_factor"})
# Classes of keras.optimizers that wrap other optimizers or are the base class.
WRAPPERS = frozenset({"Optimizer", "LossScaleOptimizer", "MultiOptimizer"})


@functools.cache
def keras_optimizers() -> dict[str, type]:
    """Every optimizer class of ``keras.optimizers`` by lower-case name, e.g. ``{"adam": Adam, ...}``."""
    import keras

    found = {}
    for attribute in dir(keras.optimizers):
        value = getattr(keras.optimizers, attribute)
        if (
            inspect.isclass(value)
            and issubclass(value, keras.optimizers.Optimizer)
            and attribute not in WRAPPERS
        ):
            found[attribute.lower()] = value
    return dict(sorted(found.items()))


def check_optimizer_name(name: str) -> str:
    """``name`` when it names a Keras optimizer.

    Raises:
        ValueError: naming the optimizers there are.
    """
    known = keras_optimizers()
    if name not in known:
        hint = did_you_mean(name, known)
        raise ValueError(f"not a Keras optimizer.{hint} Expected one of {', '.join(known)}")
    return name


def takes_argument(name: str, argument: str) -> bool:
    """Whether the optimizer ``name``'s constructor takes ``argument``."""
    return argument in inspect.signature(keras_optimizers()[name].__init__).parameters


@functools.cache
def options_model(name: str) -> type[pydantic.BaseModel]:
    """A pydantic model of the optimizer ``name``'s own options, typed by their defaults.

    A bool default takes only bools, an int default whole numbers, a float default any
    number; other defaults (``None``) take any value. Unknown options are errors.
    """
    fields: dict[str, Any] = {}
    for argument, parameter in inspect.signature(keras_optimizers()[name].__init__).parameters.items():
        if argument in NOT_OPTIONS or argument in MANAGED:
            continue
        default = parameter.default
        kind: Any = Any
        if isinstance(default, bool):
            kind = pydantic.StrictBool
        elif isinstance(default, int):
            kind = int
        elif isinstance(default, float):
            kind = float
        elif isinstance(default, str):
            kind = str
        fields[argument] = (kind, default)
    config = pydantic.ConfigDict(extra="forbid")
    return pydantic.create_model(f"{name}_options", __config__=config, **fields)


def check_optimizer_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of the optimizer ``name``, validated against its constructor.

    Raises:
        ValueError: an unknown option (naming the options the optimizer takes, and the
            ``train.optimizer`` field to use for a setting kplug manages) or a value of the
            wrong type.
    """
    model = options_model(name)
    for option in options:
        if option in MANAGED:
            raise ValueError(f"options.{option}: set train.optimizer.{option} instead of an option")
        if option not in model.model_fields:
            hint = did_you_mean(option, model.model_fields)
            taken = ", ".join(model.model_fields) or "none"
            raise ValueError(f"{name} has no option '{option}'.{hint} Its options: {taken}")
    try:
        model.model_validate(options)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"options.{'.'.join(map(str, item['loc']))} = {item.get('input')!r}: {item['msg']}"
            for item in error.errors()
        )
        raise ValueError(problems) from None
    return options
