"""The plugin manager: loads built-in and installed plugins and fills the registry.

Built-in components are plugins too (``DEFAULT_PLUGINS``), registered through
exactly the same hooks as third-party packages found in the ``kplug``
entry-point group. Environment variables control loading:

- ``KPLUG_LOAD_PLUGINS=a,b``: load only these entry-point plugins (allow-list).
- ``KPLUG_DISABLE_PLUGINS=x,y``: never load these (block-list; built-ins too,
  by module name such as ``kplug.builtin.heads``).
- ``KPLUG_TRACE_PLUGINS=1``: log every hook call to stderr.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from kplug import hookspecs
from kplug.errors import KplugError, PluginError
from kplug.registry import KIND_HOOKS, Registry

hookimpl = pluggy.HookimplMarker("kplug")

ENTRY_POINT_GROUP = "kplug"

DEFAULT_PLUGINS = (
    "kplug.builtin.backbones",
    "kplug.builtin.heads",
    "kplug.builtin.augmentations",
    "kplug.builtin.distributions",
    "kplug.builtin.precision",
    "kplug.builtin.datasets",
    "kplug.builtin.callbacks",
    "kplug.builtin.loggers",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    name: str
    error: str


@dataclass
class Plugins:
    """The loaded plugin manager, its registry and the plugins that failed.

    Attributes:
        manager: the pluggy manager; call lifecycle hooks through ``manager.hook``.
        registry: every registered component.
        providers: plugin name -> "distribution version" (or a description).
        failures: plugins that failed to import or register; the rest still work.
    """

    manager: pluggy.PluginManager
    registry: Registry
    providers: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    def versions(self) -> dict[str, str]:
        """Provider description of every loaded plugin, for ``report.json``."""
        return dict(self.providers)


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def kplug_version() -> str:
    """The installed kplug version."""
    try:
        return importlib.metadata.version("kplug")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _register_defaults(manager: pluggy.PluginManager, providers: dict[str, str]) -> None:
    for module_name in DEFAULT_PLUGINS:
        if manager.is_blocked(module_name):
            continue
        manager.register(importlib.import_module(module_name), name=module_name)
        providers[module_name] = f"kplug {kplug_version()} (built-in)"


def _register_entry_points(
    manager: pluggy.PluginManager, providers: dict[str, str], failures: list[PluginFailure]
) -> None:
    allowed = _env_list("KPLUG_LOAD_PLUGINS")
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed and entry_point.name not in allowed:
            continue
        if manager.is_blocked(entry_point.name) or manager.has_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as error:  # a broken plugin must not take the others down
            failures.append(PluginFailure(entry_point.name, f"{type(error).__name__}: {error}"))
            continue
        try:
            _register(manager, plugin, entry_point.name)
        except PluginError as error:
            failures.append(PluginFailure(entry_point.name, str(error)))
            continue
        dist = entry_point.dist
        providers[entry_point.name] = f"{dist.name} {dist.version}" if dist else entry_point.name


def _register(manager: pluggy.PluginManager, plugin: Any, name: str | None = None) -> str:
    try:
        return manager.register(plugin, name=name)
    except pluggy.PluginValidationError as error:
        raise _validation_error(manager, error) from None


def _validation_error(manager: pluggy.PluginManager, error: pluggy.PluginValidationError) -> PluginError:
    name = (
        manager.get_name(error.plugin)
        or getattr(error.plugin, "__name__", None)
        or type(error.plugin).__name__
    )
    return PluginError(
        f"Plugin '{name}' implements a hook that does not match kplug's hook specifications: "
        f"{error}. Hooks and their arguments are listed in kplug/hookspecs.py and docs/plugin-hooks.md."
    )


def _drop_unknown_hooks(
    manager: pluggy.PluginManager, installed: set[str], failures: list[PluginFailure]
) -> None:
    """Unregister installed plugins that implement hooks kplug does not specify, and report them."""
    for name in sorted(installed):
        plugin = manager.get_plugin(name)
        unknown = [
            caller.name
            for caller in manager.get_hookcallers(plugin) or []
            if not caller.has_spec() and not caller.name.startswith("_")
        ]
        if unknown:
            manager.unregister(plugin)
            installed.discard(name)
            failures.append(
                PluginFailure(
                    name,
                    f"implements hook(s) kplug does not know: {', '.join(unknown)} (a newer or older "
                    f"plugin than this kplug?). Hooks are listed in kplug/hookspecs.py.",
                )
            )


def _register_extras(
    manager: pluggy.PluginManager, providers: dict[str, str], plugins: Iterable[Any]
) -> None:
    for plugin in plugins:
        if manager.is_registered(plugin):  # already loaded, e.g. through its entry point
            continue
        name = _register(manager, plugin)
        label = getattr(plugin, "__name__", None) or type(plugin).__name__
        providers[name] = f"{label} (passed in Python)"


def _fill_registry(
    manager: pluggy.PluginManager,
    providers: dict[str, str],
    failures: list[PluginFailure],
    installed: set[str],
) -> Registry:
    """Call every component hook in load order and collect what each registers.

    A hook's components count only if the whole hook succeeds and none of its names
    is taken. An installed (entry-point) plugin that fails either way is recorded in
    ``failures`` and skipped, so it cannot take the others down; built-ins and
    plugins passed in Python raise instead, since their author is the caller.
    """
    registry = Registry()
    trace = bool(os.environ.get("KPLUG_TRACE_PLUGINS"))
    broken: set[str] = set()
    for kind, hook_name in KIND_HOOKS.items():
        for implementation in getattr(manager.hook, hook_name).get_hookimpls():  # registration order
            plugin_name = implementation.plugin_name
            if plugin_name in broken:
                continue
            provider = providers.get(plugin_name, plugin_name)
            if trace:
                print(f"kplug: {hook_name} from {provider}", file=sys.stderr)
            pending = Registry()
            try:
                implementation.function(register=pending.register_callback(kind, provider))
                for component in pending:
                    registry.check_free(component)
            except Exception as error:
                message = (
                    str(error)
                    if isinstance(error, PluginError)
                    else f"raised {type(error).__name__}: {error}"
                )
                if plugin_name not in installed:
                    raise PluginError(f"{provider}: {hook_name} {message}") from error
                broken.add(plugin_name)
                failures.append(PluginFailure(provider, f"{hook_name} {message}"))
                continue
            for component in pending:
                registry.add(component)
    return registry


def load_plugins(plugins: Iterable[Any] = (), *, entry_points: bool = True) -> Plugins:
    """Load built-in, installed (entry-point) and given plugins into a new registry.

    Args:
        plugins: extra plugin objects (modules, classes or instances with
            ``@kplug.hookimpl`` functions), e.g. for apps and tests.
        entry_points: load installed packages of the ``kplug`` entry-point group.

    Returns:
        The loaded ``Plugins``.

    Raises:
        PluginError: a hook implementation does not match any hook (misspelled
            name or wrong arguments), or two plugins register the same name.
    """
    manager = pluggy.PluginManager("kplug")
    manager.add_hookspecs(hookspecs)
    for name in _env_list("KPLUG_DISABLE_PLUGINS"):
        manager.set_blocked(name)
    providers: dict[str, str] = {}
    failures: list[PluginFailure] = []
    _register_defaults(manager, providers)
    if entry_points:
        _register_entry_points(manager, providers, failures)
    installed = set(providers) - set(DEFAULT_PLUGINS)
    _drop_unknown_hooks(manager, installed, failures)
    _register_extras(manager, providers, plugins)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise _validation_error(manager, error) from None
    if os.environ.get("KPLUG_TRACE_PLUGINS"):
        manager.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        manager.enable_tracing()
    registry = _fill_registry(manager, providers, failures, installed)
    return Plugins(manager, registry, providers, failures)


@functools.lru_cache(maxsize=1)
def _default_plugins() -> Plugins:
    return load_plugins()


def get_plugins(plugins: Plugins | Iterable[Any] | None = None) -> Plugins:
    """Return loaded plugins: the given ``Plugins``, a new load with extra plugin
    objects, or the default set (loaded once per process)."""
    if isinstance(plugins, Plugins):
        return plugins
    if plugins:
        return load_plugins(plugins)
    return _default_plugins()


__all__ = ["DEFAULT_PLUGINS", "KplugError", "Plugins", "get_plugins", "hookimpl", "load_plugins"]
