"""Resolve a run config's component names and options against the registry, once, up front."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras

from kplug.config.schema import ComponentConfig, HeadConfig, ModelConfig, RunConfig
from kplug.errors import ConfigError, KplugError, PluginError, did_you_mean, first_line
from kplug.plugin.manager import Plugins
from kplug.plugin.options import accepts_argument, describe_options, options_model, validate_options
from kplug.plugin.registry import Component


def call_factory(component: Component, options: dict[str, Any], where: str, **context: Any) -> Any:
    """Call a component's factory with its options plus the context arguments it accepts.

    A factory (or the Keras layer it builds) that rejects an option value raises
    ValueError or TypeError; that becomes a ``ConfigError`` naming the config path.
    A ``KplugError`` the factory raises already says what is wrong and passes through
    unchanged.
    """
    extra = {k: v for k, v in context.items() if accepts_argument(component.factory, k)}
    try:
        return component.factory(**options, **extra)
    except KplugError:
        raise
    except (ValueError, TypeError) as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in options.items()) or "no options"
        given = "".join(f" and {_shown_context(k, v)}" for k, v in extra.items())
        raise ConfigError(
            f"{where}: {component.kind} '{component.name}' could not be built from its options "
            f"({shown}){given}: {first_line(error)}"
        ) from None


def _shown_context(name: str, value: Any) -> str:
    """``name=value`` for a short value (an input shape), the name alone for a long one: a run
    config can hold in-memory arrays, which an error message must not print."""
    text = repr(value)
    return f"{name}={text}" if len(text) <= 80 else name


@dataclass(frozen=True)
class Chosen:
    """A component, its validated options and where it sits in the config."""

    component: Component
    options: dict[str, Any]
    where: str = ""

    def build(self, **context: Any) -> Any:
        """Call the factory with the options plus the context arguments it accepts."""
        return call_factory(self.component, self.options, self.where, **context)


@dataclass(frozen=True)
class ChosenHead(Chosen):
    """A head component with its config entry and the metrics it reports (empty: its defaults)."""

    config: HeadConfig = None  # type: ignore[assignment]
    metrics: tuple[Chosen, ...] = ()


@dataclass(frozen=True)
class ChosenPreprocessor(Chosen):
    """The run's preprocessor; ``moved``: the options it took from ``model.backbone.options``."""

    moved: tuple[str, ...] = ()

    def moved_note(self) -> str:
        """For error messages: which of the backbone's options were the preprocessor's (empty if none)."""
        return _moved_note(self.component.name, self.moved)


def _moved_note(name: str, moved: tuple[str, ...] | list[str]) -> str:
    if not moved:
        return ""
    return f" (the preprocessor '{name}' took {', '.join(moved)} from model.backbone.options)"


@dataclass(frozen=True)
class ResolvedRun:
    """A run config with every component looked up and its options validated."""

    config: RunConfig
    plugins: Plugins
    dataset: Chosen
    merged: dict[str, Chosen]
    backbone: Chosen
    heads: list[ChosenHead]
    augmentations: list[Chosen]
    precision: Chosen
    distribution: Chosen
    callbacks: list[Chosen]
    loggers: list[Chosen] = field(default_factory=list)
    preprocessor: ChosenPreprocessor | None = None
    held_out: dict[str, Chosen] = field(default_factory=dict)  # "validation"/"test" from their own source


def choose(
    plugins: Plugins, kind: str, name: str, options: dict[str, Any], where: str, name_field: str = "name"
) -> Chosen:
    """Look up one component, check its backend support and validate its options.

    ``where`` is the config path of the component's section (``model.backbone``);
    ``name_field`` the field holding its name there.
    """
    component = plugins.component(kind, name, where=f"{where}.{name_field}")
    return _checked(component, options, where)


def _checked(component: Component, options: dict[str, Any], where: str) -> Chosen:
    kind, name = component.kind, component.name
    backend = keras.backend.backend()
    if component.backends and backend not in component.backends:
        raise ConfigError(
            f"{where}: {kind} '{name}' does not run on the {backend} backend; it supports "
            f"{', '.join(component.backends)}. Set KERAS_BACKEND to one of those or choose another {kind}."
        )
    return Chosen(component, validate_options(name, component.options, options, f"{where}.options"), where)


def _preprocessor_component(plugins: Plugins, backbone: Component, model: ModelConfig) -> Component | None:
    """The config's preprocessor, else the one the backbone names at registration, else ``None``."""
    if model.preprocessor is not None:
        return plugins.component("preprocessor", model.preprocessor.name, where="model.preprocessor.name")
    default = backbone.extra("preprocessor")
    if default is None:
        return None
    if callable(default):  # plugins written before preprocessors were components: a bare factory
        name = f"{backbone.name}-preprocessor"
        return Component("preprocessor", name, default, backbone.provider, options_model(default, name))
    try:
        return plugins.component("preprocessor", default)
    except ConfigError:
        raise PluginError(
            f"Backbone '{backbone.name}' ({backbone.provider}) names the preprocessor {default!r}, which "
            f"no loaded plugin registers; registered preprocessors: "
            f"{', '.join(plugins.registry.names('preprocessor')) or 'none'}."
        ) from None


def choose_model(plugins: Plugins, model: ModelConfig) -> tuple[Chosen, ChosenPreprocessor | None]:
    """Choose the backbone and its preprocessor, and give each its own options.

    The preprocessor is ``model.preprocessor``, else the backbone's default. An option
    in ``model.backbone.options`` that the backbone does not take but its preprocessor
    does (a config written when tokenizer options sat on the backbone) moves to the
    preprocessor; one both take (a checkpoint ``path``) goes to both, unless
    ``model.preprocessor.options`` sets its own.

    Raises:
        ConfigError: an option neither takes (listing both components' options), or one
            set on both sections.
    """
    where = "model.backbone"
    backbone = plugins.component("backbone", model.backbone.name, where=f"{where}.name")
    preprocessor = _preprocessor_component(plugins, backbone, model)
    if preprocessor is None:
        return _checked(backbone, model.backbone.options, where), None
    own, given = {}, dict(model.preprocessor.options if model.preprocessor else {})
    moved = []
    theirs = preprocessor.options.model_fields
    for key, value in model.backbone.options.items():
        if key in backbone.options.model_fields:
            own[key] = value
            if key in theirs and key not in given:
                given[key] = value
                moved.append(key)
        elif key not in theirs:
            hint = did_you_mean(key, [*backbone.options.model_fields, *theirs])
            raise ConfigError(
                f"{where}.options: neither backbone '{backbone.name}' nor its preprocessor "
                f"'{preprocessor.name}' has an option '{key}'.{hint} {backbone.name} options: "
                f"{describe_options(backbone.options)}. {preprocessor.name} options (model.preprocessor"
                f".options): {describe_options(preprocessor.options)}."
            )
        elif key in given:
            raise ConfigError(
                f"{where}.options.{key} = {value!r}: '{key}' is an option of the preprocessor "
                f"'{preprocessor.name}', and model.preprocessor.options sets it too; keep the one there."
            )
        else:
            given[key] = value
            moved.append(key)
    chosen_backbone = _checked(backbone, own, where)
    try:
        chosen = _checked(preprocessor, given, "model.preprocessor")
    except ConfigError as error:
        raise ConfigError(f"{error}{_moved_note(preprocessor.name, moved)}") from None
    return chosen_backbone, ChosenPreprocessor(chosen.component, chosen.options, chosen.where, tuple(moved))


def _choose_list(plugins: Plugins, kind: str, items: list[ComponentConfig], where: str) -> list[Chosen]:
    return [choose(plugins, kind, item.name, item.options, f"{where}[{i}]") for i, item in enumerate(items)]


def resolve(config: RunConfig, plugins: Plugins) -> ResolvedRun:
    """Resolve every component of ``config``.

    Raises:
        ConfigError: an unknown name (listing the registered ones and the closest),
            an unknown or mistyped option, or a component that does not support
            the active backend.
    """
    data = config.data
    merged = {
        item.name: choose(plugins, "dataset", item.source, item.options, f"data.sources[{i}]", "source")
        for i, item in enumerate(data.sources)
    }
    heads = []
    for i, head in enumerate(config.model.heads):
        chosen = choose(plugins, "head", head.name, head.options, f"model.heads[{i}]")
        metrics = [ComponentConfig(name=m) if isinstance(m, str) else m for m in head.metrics or []]
        chosen_metrics = tuple(_choose_list(plugins, "metric", metrics, f"model.heads[{i}].metrics"))
        heads.append(ChosenHead(chosen.component, chosen.options, chosen.where, head, chosen_metrics))
    dataset = (
        next(iter(merged.values()))
        if merged
        else choose(plugins, "dataset", data.source, data.options, "data", "source")
    )
    backbone, preprocessor = choose_model(plugins, config.model)
    held_out = {
        split: choose(
            plugins, "dataset", given.source or data.source, given.options, f"data.{split}", "source"
        )
        for split in ("validation", "test")
        if (given := getattr(data, split)) is not None
    }
    return ResolvedRun(
        config=config,
        plugins=plugins,
        dataset=dataset,
        merged=merged,
        backbone=backbone,
        preprocessor=preprocessor,
        heads=heads,
        augmentations=_choose_list(plugins, "augmentation", config.augment, "augment"),
        precision=choose(
            plugins, "precision", config.precision.policy, config.precision.options, "precision", "policy"
        ),
        distribution=choose(
            plugins, "distribution", config.distribution.name, config.distribution.options, "distribution"
        ),
        callbacks=_choose_list(plugins, "callback", config.callbacks, "callbacks"),
        loggers=_choose_list(plugins, "logger", config.loggers, "loggers"),
        held_out=held_out,
    )
