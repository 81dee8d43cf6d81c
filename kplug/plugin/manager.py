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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from kplug.errors import ConfigError, KplugError, PluginError
from kplug.plugin import spec
from kplug.plugin.registry import KIND_HOOKS, Component, Registry

if TYPE_CHECKING:
    from kplug.config.schema import RunConfig

hookimpl = pluggy.HookimplMarker("kplug")

ENTRY_POINT_GROUP = "kplug"

DEFAULT_PLUGINS = (
    "kplug.builtin.backbones",
    "kplug.builtin.heads",
    "kplug.builtin.augmentations",
    "kplug.builtin.distributions",
    "kplug.builtin.precision",
    "kplug.builtin.datasets",
    "kplug.builtin.dataframes",
    "kplug.builtin.streams",
    "kplug.builtin.callbacks",
    "kplug.builtin.metrics",
    "kplug.builtin.loggers",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised; it is disabled.

    Attributes:
        name: the plugin (entry-point name, or its distribution and version).
        error: what went wrong.
        provides: ``(kind, name)`` of the components it registered or tried to
            register before it failed (empty when it failed to import).
    """

    name: str
    error: str
    provides: tuple[tuple[str, str], ...] = ()


@dataclass
class Plugins:
    """The loaded plugin manager, its registry and the plugins that failed.

    Attributes:
        manager: the pluggy manager; call lifecycle hooks through ``call_hook`` and ``configure``,
            never ``manager.hook`` (one order, one error policy).
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

    def component(self, kind: str, name: str, where: str | None = None) -> Component:
        """Look up a component; when it is unknown, say which failed plugin provides (or may provide) it.

        Raises:
            ConfigError: the registered names of that kind, plus the plugins that failed to load.
        """
        try:
            component = self.registry.get(kind, name, where)
        except ConfigError as error:
            prefix = f"{where}: " if where else ""
            for failure in self.failures:
                if (kind, name) in failure.provides:
                    raise ConfigError(
                        f"{prefix}{kind} '{name}' comes from the plugin {failure.name}, which failed to "
                        f"load and is disabled ({failure.error.rstrip('.')}). Fix or reinstall that plugin "
                        f"(`kplug plugins` lists every failure), or choose another {kind}: "
                        f"{', '.join(self.registry.names(kind)) or 'none'}."
                    ) from None
            if not self.failures:
                raise
            failed = "; ".join(f"{f.name} ({f.error})" for f in self.failures)
            raise ConfigError(f"{error} Plugin(s) that failed to load and may provide it: {failed}") from None
        if component.provider.endswith("(built-in)"):
            return component  # built-ins load first: a plugin reusing their name is simply disabled
        for failure in self.failures:
            if (kind, name) in failure.provides:  # two plugins claim the name: refuse to guess
                prefix = f"{where}: " if where else ""
                raise ConfigError(
                    f"{prefix}{kind} '{name}' is registered by {component.provider} and also by the plugin "
                    f"{failure.name}, which was disabled ({failure.error.rstrip('.')}). Uninstall one of them "
                    f"or disable one with KPLUG_DISABLE_PLUGINS=<entry-point name>."
                )
        return component

    def implements(self, hook_name: str) -> bool:
        """Whether any loaded plugin implements the lifecycle hook ``hook_name``."""
        return bool(getattr(self.manager.hook, hook_name).get_hookimpls())

    def call_hook(self, hook_name: str, **kwargs: Any) -> Any:
        """Call a lifecycle hook through kplug's one hook-call path (order and errors: ``kplug.plugin.spec``).

        Implementations run one by one in load order: built-ins, installed plugins in
        entry-point order, then plugins passed in Python in the order given (``tryfirst`` /
        ``trylast`` move one to the front or the back). A ``firstresult`` hook stops at the
        first implementation that returns something other than ``None`` and returns that
        value (or ``None``); any other hook returns the list of non-``None`` results.

        Errors: a ``KplugError`` a plugin raises on purpose (e.g. a ``ConfigError``) passes
        unchanged, and so does anything raised by a built-in or by a plugin object given in
        Python (its author is the caller, who may use an exception for control flow, as
        ``kplug tune`` prunes trials). Any other exception of an installed plugin becomes a
        ``PluginError`` naming the plugin, its version and how to run without it.
        """
        first_result = bool(getattr(self.manager.hook, hook_name).spec.opts.get("firstresult"))
        results = []
        for _provider, value in self._each(hook_name, kwargs):
            if value is None:
                continue
            if first_result:
                return value
            results.append(value)
        return None if first_result else results

    def configure(self, config: RunConfig) -> RunConfig:
        """Run ``kplug_configure``: each plugin, in load order, adjusts the config the previous one left.

        Raises:
            PluginError: a plugin returned something other than a dict or ``None``, or a change
                that does not validate.
        """
        from kplug.config.load import parse_config

        arguments = {"config": config}  # each plugin sees the config the previous one left
        for name, override in self._each("kplug_configure", arguments):
            if override is None:
                continue
            if not isinstance(override, dict):
                raise PluginError(
                    f"kplug_configure of {name} returned {type(override).__name__}; "
                    f"expected a dict of config fields to change, or None."
                )
            try:
                config = parse_config({**config.model_dump(by_alias=True), **override})
            except ConfigError as error:
                raise PluginError(f"kplug_configure of {name} returned an invalid change: {error}") from None
            arguments["config"] = config
        return config

    def _each(self, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Call every implementation of ``hook_name`` in the documented order, applying the error policy.

        Yields ``(provider, returned value)`` per implementation. ``kwargs`` is read before each
        call, so the caller may change it between calls (``kplug_configure`` passes on the config
        the previous plugin left).
        """
        hook = getattr(self.manager.hook, hook_name)
        trace = bool(os.environ.get("KPLUG_TRACE_PLUGINS"))
        for implementation in _call_order(hook.get_hookimpls()):
            plugin_name = implementation.plugin_name
            provider = self.providers.get(plugin_name, plugin_name)
            if trace:
                print(f"kplug: {hook_name} from {provider}", file=sys.stderr)
            try:
                value = implementation.function(
                    **{key: kwargs[key] for key in implementation.argnames if key in kwargs}
                )
            except KplugError:
                raise
            except Exception as error:
                if not self._installed(plugin_name):
                    raise
                raise PluginError(
                    f"{hook_name} of {provider} raised {type(error).__name__}: {error}. Run without it: "
                    f"KPLUG_DISABLE_PLUGINS={plugin_name} or kplug --no-plugins."
                ) from error
            yield provider, value

    def _installed(self, plugin_name: str) -> bool:
        """Whether ``plugin_name`` came from an entry point (not a built-in, not passed in Python)."""
        provider = self.providers.get(plugin_name, "")
        return (
            bool(provider)
            and plugin_name not in DEFAULT_PLUGINS
            and not provider.endswith("(passed in Python)")
        )


def _call_order(implementations: list[Any]) -> list[Any]:
    """Load order, with ``tryfirst`` implementations moved to the front and ``trylast`` to the back.

    pluggy keeps ``get_hookimpls()`` in registration order (grouped trylast, normal, tryfirst).
    """
    return (
        [i for i in implementations if i.tryfirst]
        + [i for i in implementations if not i.tryfirst and not i.trylast]
        + [i for i in implementations if i.trylast]
    )


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
        f"{error}. Hooks and their arguments are listed in kplug/plugin/spec.py and docs/plugin-hooks.md."
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
                    f"plugin than this kplug?). Hooks are listed in kplug/plugin/spec.py.",
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


def _recording(register: Any, kind: str, attempted: list[tuple[str, str]]) -> Any:
    """Wrap a ``register`` callback so the names a plugin tries to register are known even if it fails."""

    def recording_register(name: Any, *args: Any, **kwargs: Any) -> None:
        attempted.append((kind, str(name)))
        register(name, *args, **kwargs)

    return recording_register


def _fill_registry(
    manager: pluggy.PluginManager,
    providers: dict[str, str],
    failures: list[PluginFailure],
    installed: set[str],
) -> Registry:
    """Call every component hook in load order and collect what each registers.

    A hook's components count only if the whole hook succeeds, returns nothing and
    none of its names is taken. An installed (entry-point) plugin that fails either
    way is recorded in ``failures`` and disabled: the components of its other hooks
    are removed, its lifecycle hooks are unregistered and it leaves ``providers``, so
    it cannot take the others down. Built-ins and plugins passed in Python raise
    instead, since their author is the caller.
    """
    registry = Registry()
    trace = bool(os.environ.get("KPLUG_TRACE_PLUGINS"))
    added: dict[str, list[Component]] = {}
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
            attempted: list[tuple[str, str]] = []
            try:
                returned = implementation.function(
                    register=_recording(pending.register_callback(kind, provider), kind, attempted)
                )
                if returned is not None:
                    raise PluginError(
                        f"returned {type(returned).__name__}; a component hook returns nothing: it calls "
                        f"register(name, factory) once per component"
                    )
                for component in pending:
                    registry.check_free(component)
            except Exception as error:
                message = (
                    f"{hook_name}: {error}"
                    if isinstance(error, PluginError)
                    else f"{hook_name} raised {type(error).__name__}: {error}"
                )
                if plugin_name not in installed:
                    raise PluginError(f"{provider}: {message}") from error
                broken.add(plugin_name)
                earlier = added.pop(plugin_name, [])
                for component in earlier:
                    registry.remove(component)
                provides = tuple(dict.fromkeys([(c.kind, c.name) for c in earlier] + attempted))
                failures.append(PluginFailure(provider, message, provides))
                continue
            for component in pending:
                registry.add(component)
                added.setdefault(plugin_name, []).append(component)
    for plugin_name in broken:  # disabled: its lifecycle hooks must not run either
        manager.unregister(name=plugin_name)
        providers.pop(plugin_name, None)
        installed.discard(plugin_name)
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
    manager.add_hookspecs(spec)
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
