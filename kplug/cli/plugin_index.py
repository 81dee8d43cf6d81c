"""A cached index of the installed components and plugin commands, so the CLI starts fast.

Loading the plugins imports Keras and with it the backend (seconds). ``kplug --help``,
``kplug --version``, usage errors and ``kplug plugins`` need only what the plugins register:
names, providers, descriptions, failures and the commands plugins add. The index stores that
as JSON in ``$KPLUG_CACHE_DIR`` (default ``~/.cache/kplug``), one file per key. The key holds
kplug's version, every ``kplug`` entry point with its distribution and version, the newest
modification time of each plugin's source files (and kplug's), the Keras backend and the
``KPLUG_*`` variables that change what loads; any change makes a new index, built by loading
the plugins once. Where the cache cannot be written, the index is built in memory each time.

This module imports no Keras, pluggy or pydantic: everything heavy is imported in ``build``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kplug.cache import cache_dir

ENTRY_POINT_GROUP = "kplug"  # the same group as kplug.plugin.manager.ENTRY_POINT_GROUP
FORMAT = 2  # bump when the stored fields change
KEEP = 16  # indexes kept in the cache folder (the newest)
# Variables that change which plugins load or what they register.
KEY_ENVIRONMENT = ("KERAS_BACKEND", "KPLUG_LOAD_PLUGINS", "KPLUG_DISABLE_PLUGINS")


@dataclass
class PluginIndex:
    """What ``kplug plugins`` and ``kplug --help`` show, without the plugins loaded.

    Attributes:
        components: ``[kind, name, provider, description]`` of every registered component.
        failures: ``[name, error]`` of every plugin that failed to load and is disabled.
        commands: ``[name, help]`` of every command plugins add.
        warnings: what adding the plugins' commands warned about (a clash, a raising hook).
        providers: plugin name -> "distribution version" of every loaded plugin.
        auto_offers: ``[name, provider, backends, priority, when]`` of every distribution that offers
            itself to ``distribution: auto`` (``backends`` empty for all; ``when`` the first line of
            its offer's docstring), highest priority first.
    """

    components: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    providers: dict[str, str] = field(default_factory=dict)
    auto_offers: list[list[Any]] = field(default_factory=list)

    @classmethod
    def from_plugins(
        cls, plugins: Any, commands: Sequence[Sequence[str]] = (), warnings: Sequence[str] = ()
    ) -> PluginIndex:
        """The index of loaded ``Plugins`` (and the commands they add, when known)."""
        return cls(
            components=[[c.kind, c.name, c.provider, c.description] for c in plugins.registry],
            failures=[[f.name, f.error] for f in plugins.failures],
            commands=[list(command) for command in commands],
            warnings=list(warnings),
            providers=dict(plugins.versions()),
            auto_offers=_auto_offers(plugins.registry),
        )

    def command_names(self) -> set[str]:
        """The names of the commands plugins add."""
        return {name for name, _help in self.commands}


def _auto_offers(registry: Any) -> list[list[Any]]:
    offers = []
    for component in registry:
        offer = component.extra("auto") if component.kind == "distribution" else None
        if callable(offer):
            when = ((offer.__doc__ or "").strip().splitlines() or [""])[0]
            priority = int(component.extra("auto_priority"))
            offers.append(
                [component.name, component.provider, list(component.backends or ()), priority, when]
            )
    return sorted(offers, key=lambda offer: (-offer[3], offer[0]))  # the order ``choose_auto`` tries


def kplug_version() -> str:
    """The installed kplug version (``0+unknown`` when kplug is not installed, e.g. from a checkout)."""
    try:
        return importlib.metadata.version("kplug")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _source_stamp(module_name: str) -> list[Any]:
    """``[where, newest mtime in ns, number of .py files]`` of a top-level module or package, not imported."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return ["", 0, 0]
    if spec is None:
        return ["", 0, 0]
    roots = list(spec.submodule_search_locations or [])
    files = [] if roots else [spec.origin] if spec.origin and os.path.exists(spec.origin) else []
    for root in roots:
        for folder, folders, names in os.walk(root):
            folders[:] = [f for f in folders if f != "__pycache__"]
            files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    where = os.pathsep.join(roots) or spec.origin or ""
    return [where, max((os.stat(f).st_mtime_ns for f in files), default=0), len(files)]


def index_key(no_plugins: bool) -> dict[str, Any]:
    """Everything the index depends on; a different key means the stored index is stale."""
    entry_points = []
    if not no_plugins:
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            module = entry_point.value.split(":")[0].split(".")[0].strip()
            entry_points.append(
                [
                    entry_point.name,
                    entry_point.value,
                    dist.name if dist else "",
                    dist.version if dist else "",
                    _source_stamp(module),
                ]
            )
    return {
        "format": FORMAT,
        "kplug": [kplug_version(), _source_stamp("kplug")],
        "no_plugins": no_plugins,
        "environment": {name: os.environ.get(name, "") for name in KEY_ENVIRONMENT},
        "entry_points": sorted(entry_points),
    }


def _index_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"plugin-index-{digest}.json"


def _read(path: Path, key: dict[str, Any]) -> PluginIndex | None:
    try:
        stored = json.loads(path.read_text())
        if stored.get("key") != key:
            return None
        return PluginIndex(**stored["index"])
    except (OSError, ValueError, TypeError, KeyError):
        return None  # missing, unreadable or from another format: build it again


def _write(path: Path, key: dict[str, Any], index: PluginIndex) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as file:
            json.dump({"key": key, "index": asdict(index)}, file, indent=1)
        os.replace(file.name, path)
        _prune(path.parent)
    except OSError:
        pass  # a read-only home: the index is simply built again next time


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` newest indexes (one per backend and plugin set in use), delete the others."""
    stored = sorted(folder.glob("plugin-index-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in stored[KEEP:]:
        old.unlink(missing_ok=True)


def load_index(no_plugins: bool, build: Callable[[], PluginIndex]) -> PluginIndex:
    """The stored index for the installed plugins, or ``build()``'s (then stored) when it is stale.

    Args:
        no_plugins: the index of kplug's built-in components only (``kplug --no-plugins``).
        build: loads the plugins and returns their index; called only when the stored one is stale.
    """
    key = index_key(no_plugins)
    path = _index_path(key)
    index = _read(path, key)
    if index is None:
        index = build()
        _write(path, key, index)
    return index
