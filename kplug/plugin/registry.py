"""The component registry: names mapped to factories, with who provided each.

Plugins never touch the registry directly; each component hook receives a
``register`` callback bound to one kind and one provider (see ``Register``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pydantic

from kplug.errors import ConfigError, PluginError, did_you_mean
from kplug.plugin.options import options_model


@dataclass(frozen=True)
class Extra:
    """One kind-specific setting a component may be registered with (``register(..., name=value)``).

    Attributes:
        name: the keyword passed to ``register``.
        default: its value when the component is registered without it.
        description: what kplug does with it.
    """

    name: str
    default: Any
    description: str


@dataclass(frozen=True)
class Kind:
    """A component kind: the hook that registers it and the extras ``register`` accepts for it."""

    name: str
    hook: str
    extras: tuple[Extra, ...] = ()

    def extra(self, name: str) -> Extra:
        """The declared extra ``name``.

        Raises:
            PluginError: ``name`` is not an extra of this kind (naming the accepted ones).
        """
        for extra in self.extras:
            if extra.name == name:
                return extra
        accepted = ", ".join(e.name for e in self.extras) or "none"
        hint = did_you_mean(name, [e.name for e in self.extras])
        raise PluginError(
            f"unknown extra '{name}' for a {self.name}.{hint} A {self.name} accepts: {accepted}."
        )


# Every component kind, in the order of `kplug plugins`.
KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "backbone",
            "kplug_register_backbones",
            (
                Extra(
                    "preprocessor",
                    None,
                    "the name of a registered preprocessor (or a bare factory) used when the config "
                    "sets no `model.preprocessor`",
                ),
                Extra(
                    "presets",
                    None,
                    "presets() -> list of kplug.plugin.Preset: the pretrained models it loads, listed "
                    "by `kplug presets` (called only then)",
                ),
            ),
        ),
        Kind("preprocessor", "kplug_register_preprocessors"),
        Kind(
            "head",
            "kplug_register_heads",
            (
                Extra(
                    "target_kind", "class", "'class', 'multi_label' or 'value' when the factory does not say"
                ),
            ),
        ),
        Kind(
            "augmentation",
            "kplug_register_augmentations",
            (
                Extra(
                    "batch",
                    False,
                    "True: the factory returns transform(x, y, rng) applied to training batches",
                ),
            ),
        ),
        Kind(
            "distribution",
            "kplug_register_distributions",
            (
                Extra("auto", None, "offer() -> Distribution | None, considered by `distribution: auto`"),
                Extra("auto_priority", 0, "higher offers are tried first by `distribution: auto`"),
            ),
        ),
        Kind("precision", "kplug_register_precision_policies"),
        Kind(
            "dataset",
            "kplug_register_datasets",
            (
                Extra(
                    "path_option", None, "the option holding the main file (`kplug evaluate RUN --data FILE`)"
                ),
                Extra("in_memory", False, "True: the data lives in the config (arrays), not in files"),
                Extra("target_options", (), "options cleared when other data is read without targets"),
            ),
        ),
        Kind(
            "metric",
            "kplug_register_metrics",
            (
                Extra(
                    "labels",
                    "ids",
                    "how a classification head's targets reach the metric: 'ids' (class ids) or "
                    "'one_hot' (rows of 0/1)",
                ),
            ),
        ),
        Kind("callback", "kplug_register_callbacks"),
        Kind("logger", "kplug_register_loggers"),
    )
}

# Component kind -> the hook that registers it.
KIND_HOOKS = {name: kind.hook for name, kind in KINDS.items()}

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class Register(Protocol):
    """The callback a component hook receives: ``register(name, factory, *, options=None, ...)``.

    Args:
        name: the name users write in configs (lower-case letters, digits, ``.``, ``_``, ``-``).
        factory: builds the component from its options (keyword arguments).
        options: a pydantic model of the options; by default one is derived from the factory's
            signature and type hints.
        backends: the Keras backends it runs on (``("jax",)``); ``None`` for all.
        description: one line for ``kplug plugins`` (default: the factory docstring's first line).
        **extras: the kind-specific settings of ``KINDS[kind].extras``, e.g. a dataset's
            ``path_option``. Another name is a ``PluginError`` naming the accepted ones.
    """

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        options: type[pydantic.BaseModel] | None = None,
        backends: tuple[str, ...] | None = None,
        description: str | None = None,
        **extras: Any,
    ) -> None: ...


@dataclass(frozen=True)
class Component:
    """One registered component.

    Attributes:
        kind: one of ``KIND_HOOKS``' keys.
        name: the name users write in configs.
        factory: builds the component from its options.
        provider: the distribution (``"kplug-vision 0.1.0"``) or plugin that registered it.
        options: pydantic model of the factory's options.
        backends: Keras backends it supports, or ``None`` for all.
        description: one line for ``kplug plugins``.
        extras: kind-specific settings (e.g. a dataset's ``path_option``), as declared in
            ``KINDS``; read them with ``extra(name)``.
    """

    kind: str
    name: str
    factory: Callable[..., Any]
    provider: str
    options: type[pydantic.BaseModel]
    backends: tuple[str, ...] | None = None
    description: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def extra(self, name: str) -> Any:
        """The value of the extra ``name`` this component was registered with, or the kind's default.

        Raises:
            PluginError: ``name`` is not an extra of this component's kind.
        """
        declared = KINDS[self.kind].extra(name)
        return self.extras.get(name, declared.default)


class Registry:
    """All components by kind and name."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KIND_HOOKS}

    def add(self, component: Component) -> None:
        """Add a component; a second component of the same kind and name is an error."""
        self.check_free(component)
        self._components[component.kind][component.name] = component

    def check_free(self, component: Component) -> None:
        """Raise ``PluginError`` naming both providers if the name is already taken."""
        existing = self._components[component.kind].get(component.name)
        if existing is not None:
            raise PluginError(
                f"Duplicate {component.kind} '{component.name}': registered by "
                f"{existing.provider} and again by {component.provider}. "
                f"Rename one, or disable a plugin with KPLUG_DISABLE_PLUGINS."
            )

    def remove(self, component: Component) -> None:
        """Remove a component (a plugin that failed after registering it is disabled)."""
        self._components[component.kind].pop(component.name, None)

    def get(self, kind: str, name: str, where: str | None = None) -> Component:
        """Return the component ``name`` of ``kind``.

        Raises:
            ConfigError: listing the registered names of that kind and the closest match.
        """
        components = self._components[kind]
        if name in components:
            return components[name]
        prefix = f"{where}: " if where else ""
        hint = did_you_mean(name, components)
        registered = ", ".join(sorted(components)) or "none"
        raise ConfigError(
            f"{prefix}Unknown {kind} '{name}'.{hint} Registered {kind}s: {registered}. "
            f"Run `kplug plugins` to see every component and its provider."
        )

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self._components[kind])

    def __iter__(self) -> Iterator[Component]:
        for kind in KIND_HOOKS:
            yield from (self._components[kind][n] for n in sorted(self._components[kind]))

    def register_callback(self, kind: str, provider: str) -> Register:
        """Return the ``register`` callback handed to one plugin's hook for ``kind``."""

        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            options: type[pydantic.BaseModel] | None = None,
            backends: tuple[str, ...] | None = None,
            description: str | None = None,
            **extras: Any,
        ) -> None:
            if not isinstance(name, str) or not NAME_PATTERN.match(name):
                raise PluginError(
                    f"{provider} registered a {kind} with the invalid name {name!r}: "
                    f"names are lower-case letters, digits, '.', '_' and '-'."
                )
            if not callable(factory):
                raise PluginError(
                    f"{provider} registered {kind} '{name}' with a factory that is not callable: {factory!r}."
                )
            if options is not None and not (
                isinstance(options, type) and issubclass(options, pydantic.BaseModel)
            ):
                raise PluginError(
                    f"{provider} registered {kind} '{name}' with options={options!r}; "
                    f"expected a pydantic.BaseModel subclass."
                )
            for extra in extras:
                try:
                    KINDS[kind].extra(extra)
                except PluginError as error:
                    raise PluginError(f"{provider} registered {kind} '{name}': {error}") from None
            doc = description or (factory.__doc__ or "").strip().split("\n")[0]
            self.add(
                Component(
                    kind=kind,
                    name=name,
                    factory=factory,
                    provider=provider,
                    options=options or options_model(factory, name),
                    backends=tuple(backends) if backends else None,
                    description=doc,
                    extras=extras,
                )
            )

        return register
