"""Resolve a run config's component names and options against the registry, once, up front."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras

from kplug.config import ComponentConfig, HeadConfig, RunConfig
from kplug.errors import ConfigError
from kplug.options import accepts_argument, validate_options
from kplug.plugins import Plugins
from kplug.registry import Component


@dataclass(frozen=True)
class Chosen:
    """A component and its validated options."""

    component: Component
    options: dict[str, Any]

    def build(self, **context: Any) -> Any:
        """Call the factory with the options plus the context arguments it accepts."""
        extra = {k: v for k, v in context.items() if accepts_argument(self.component.factory, k)}
        return self.component.factory(**self.options, **extra)


@dataclass(frozen=True)
class ChosenHead(Chosen):
    """A head component with its config entry."""

    config: HeadConfig = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ResolvedRun:
    """A run config with every component looked up and its options validated."""

    config: RunConfig
    plugins: Plugins
    dataset: Chosen
    backbone: Chosen
    heads: list[ChosenHead]
    augmentations: list[Chosen]
    precision: Chosen
    distribution: Chosen
    callbacks: list[Chosen]


def choose(
    plugins: Plugins, kind: str, name: str, options: dict[str, Any], where: str, name_field: str = "name"
) -> Chosen:
    """Look up one component, check its backend support and validate its options.

    ``where`` is the config path of the component's section (``model.backbone``);
    ``name_field`` the field holding its name there.
    """
    component = plugins.registry.get(kind, name, where=f"{where}.{name_field}")
    backend = keras.backend.backend()
    if component.backends and backend not in component.backends:
        raise ConfigError(
            f"{where}: {kind} '{name}' does not run on the {backend} backend; it supports "
            f"{', '.join(component.backends)}. Set KERAS_BACKEND to one of those or choose another {kind}."
        )
    return Chosen(component, validate_options(name, component.options, options, f"{where}.options"))


def _choose_list(plugins: Plugins, kind: str, items: list[ComponentConfig], where: str) -> list[Chosen]:
    return [choose(plugins, kind, item.name, item.options, f"{where}[{i}]") for i, item in enumerate(items)]


def resolve(config: RunConfig, plugins: Plugins) -> ResolvedRun:
    """Resolve every component of ``config``.

    Raises:
        ConfigError: an unknown name (listing the registered ones and the closest),
            an unknown or mistyped option, or a component that does not support
            the active backend.
    """
    heads = []
    for i, head in enumerate(config.model.heads):
        chosen = choose(plugins, "head", head.name, head.options, f"model.heads[{i}]")
        heads.append(ChosenHead(chosen.component, chosen.options, head))
    return ResolvedRun(
        config=config,
        plugins=plugins,
        dataset=choose(plugins, "dataset", config.data.source, config.data.options, "data", "source"),
        backbone=choose(
            plugins, "backbone", config.model.backbone.name, config.model.backbone.options, "model.backbone"
        ),
        heads=heads,
        augmentations=_choose_list(plugins, "augmentation", config.augment, "augment"),
        precision=choose(
            plugins, "precision", config.precision.policy, config.precision.options, "precision", "policy"
        ),
        distribution=choose(
            plugins, "distribution", config.distribution.name, config.distribution.options, "distribution"
        ),
        callbacks=_choose_list(plugins, "callback", config.callbacks, "callbacks"),
    )
