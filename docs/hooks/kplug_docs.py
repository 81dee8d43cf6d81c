"""MkDocs hooks: pages generated from the code at build time, so they cannot drift from it.

- ``config-reference.md``: every field of ``kplug.config.schema.RunConfig`` (walked through its
  pydantic models: type, default, constraints, description) and the options of every
  built-in component (from the registry).
- ``cli.md``: the ``--help`` of every ``kplug`` subcommand.
- ``plugins/<name>.md``: one page per plugin package, the package's own
  ``plugins/<name>/README.md``, and ``plugins/index.md`` listing them.
- ``plugin-hooks.md``: its hook reference is regenerated from the docstrings of
  ``kplug/plugin/spec.py`` (``hook_reference.py``).

Links in pages that point outside ``docs/`` (README files, source files) are rewritten: to the
generated plugin page when they name a plugin package, else to the repository path as text.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
import posixpath
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pydantic
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PLUGINS = REPO / "plugins"
PLUGIN_NAV_TITLE = "Plugin packages"

# generated page -> the repository file it comes from (for rewriting its relative links)
_SOURCES: dict[str, Path] = {}

# ---------------------------------------------------------------------------
# Config reference
# ---------------------------------------------------------------------------

_CONSTRAINTS = {
    annotated_types.Gt: ("gt", "> {}"),
    annotated_types.Ge: ("ge", ">= {}"),
    annotated_types.Lt: ("lt", "< {}"),
    annotated_types.Le: ("le", "<= {}"),
    annotated_types.MinLen: ("min_length", "at least {} items"),
    annotated_types.MaxLen: ("max_length", "at most {} items"),
}


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "run"


def _constraints(metadata: list[Any]) -> list[str]:
    found = []
    for item in metadata:
        for kind, (attribute, template) in _CONSTRAINTS.items():
            if isinstance(item, kind):
                found.append(template.format(getattr(item, attribute)))
        if isinstance(item, pydantic.fields.FieldInfo):
            found += _constraints(item.metadata)
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            found.append(f"matches {pattern}")
    return found


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation refers to (through Optional, list, dict, Annotated, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        for model in _models_in(arg):
            if model not in found:
                found.append(model)
    return found


def describe_type(annotation: Any, links: dict[type[BaseModel], str]) -> str:
    """A readable type: ``float > 0``, ``list of string``, ``'adam' or 'sgd'``, a link to a section."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = describe_type(args[0], links)
        extra = _constraints(list(args[1:]))
        return f"{inner} ({', '.join(extra)})" if extra else inner
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(arg, links) for arg in args)
    if origin is typing.Literal:
        return " or ".join(json.dumps(value) if isinstance(value, str) else str(value) for value in args)
    if origin in (list, tuple, set):
        return f"list of {describe_type(args[0], links)}" if args else "list"
    if origin is dict:
        return (
            f"mapping of {describe_type(args[0], links)} to {describe_type(args[1], links)}"
            if args
            else "mapping"
        )
    if annotation is type(None):
        return "null"
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return (
            f"[{annotation.__name__}](#{links[annotation]})" if annotation in links else annotation.__name__
        )
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " or ".join(str(member.value) for member in annotation)
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: pydantic.fields.FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return "see below"
    text = json.dumps(value, default=str)
    return "null" if text == "null" else text.replace("|", "\\|")


def _sections(model: type[BaseModel], path: str, seen: list[tuple[str, type[BaseModel]]]) -> None:
    seen.append((path, model))
    for name, field in model.model_fields.items():
        key = field.alias or name
        child = f"{path}.{key}" if path else key
        origin = typing.get_origin(field.annotation)
        for sub in _models_in(field.annotation):
            if origin is list or (
                origin in (typing.Union, types.UnionType) and "list" in str(field.annotation)
            ):
                _sections(sub, f"{child}[]", seen)
            elif origin is dict:
                suffix = "NAME" if len(_models_in(field.annotation)) == 1 else f"PATH ({sub.__name__})"
                _sections(sub, f"{child}.{suffix}", seen)
            else:
                _sections(sub, child, seen)


def config_reference() -> str:
    """The config reference page: one section per config model, one row per field."""
    from kplug.config.schema import RunConfig

    sections: list[tuple[str, type[BaseModel]]] = []
    _sections(RunConfig, "", sections)
    links = {}
    for path, model in sections:
        links.setdefault(model, _anchor(path))
    lines = [
        "# Config reference",
        "",
        "Generated from kplug's pydantic config models (`kplug/config/schema.py`, `kplug/tune/space.py`) "
        "when the docs are built, so it always matches the code. A run config is YAML, JSON or TOML "
        "with these fields; unknown fields are errors that name the allowed ones. "
        "`kplug init` writes a commented starter config. Component `options` belong to the "
        "component: see [Built-in components](#built-in-components) below, and each plugin "
        "package's page.",
        "",
    ]
    for path, model in sections:
        title = path or "Run config (top level)"
        lines += [f"## {title} {{#{_anchor(path)}}}", ""]
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        if doc:
            lines += [doc, ""]
        lines += ["| Field | Type | Default | Description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = field.alias or name
            kind = describe_type(field.annotation, links)
            extra = _constraints(field.metadata)
            if extra:
                kind += f" ({', '.join(extra)})"
            description = (field.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| `{key}` | {kind.replace('|', chr(92) + '|')} | {_default(field)} | {description} |"
            )
        lines.append("")
    lines += components_reference()
    return "\n".join(lines) + "\n"


def components_reference() -> list[str]:
    """Tables of the built-in components of every kind, with their options (from the registry)."""
    from kplug.plugin.manager import load_plugins
    from kplug.plugin.options import describe_options
    from kplug.plugin.registry import KIND_HOOKS

    registry = load_plugins(entry_points=False).registry
    lines = [
        "## Built-in components {#built-in-components}",
        "",
        "Registered by kplug's own plugins (`kplug/builtin/`). Plugin packages add more; "
        "`kplug plugins` lists everything installed. Options are checked against each "
        "component's signature: an unknown option or a wrong type fails before anything runs.",
        "",
    ]
    for kind, hook in KIND_HOOKS.items():
        names = registry.names(kind)
        if not names:
            continue
        lines += [f"### {kind.capitalize()}s", "", f"Registered through `{hook}`.", ""]
        lines += ["| Name | Options | Description |", "|---|---|---|"]
        for name in names:
            component = registry.get(kind, name)
            options = describe_options(component.options).replace("|", "\\|")
            lines.append(f"| `{name}` | {options} | {component.description} |")
        lines.append("")
    return lines


# ---------------------------------------------------------------------------
# CLI and plugin pages
# ---------------------------------------------------------------------------


def cli_reference() -> str:
    """The ``--help`` of ``kplug`` and of each subcommand."""
    from kplug.cli.main import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Generated from `kplug/cli/main.py` when the docs are built. Bad input exits with code 2 and a "
        "one-paragraph message (`--debug` shows the traceback); an interrupted `train` or `tune` "
        "exits with 130 and can be continued.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        lines += [f"## kplug {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


def plugin_packages() -> list[tuple[str, Path, str]]:
    """``(name, README path, description)`` of every ``plugins/<name>/`` with a README."""
    found = []
    for readme in sorted(PLUGINS.glob("*/README.md")):
        pyproject = readme.parent / "pyproject.toml"
        description = ""
        if pyproject.is_file():
            description = tomllib.loads(pyproject.read_text()).get("project", {}).get("description", "")
        found.append((readme.parent.name, readme, description))
    return found


_IMAGE = re.compile(r"(!\[[^\]]*\]\()([^)\s]+)(\))")


def collect_images(markdown: str, base: Path, name: str) -> tuple[str, dict[str, Path]]:
    """Images a plugin README shows from its own folder: served as ``plugins/<name>/<path>``.

    Returns the markdown with those image links pointing at the served copies, and the
    files to add (site path -> file).
    """
    images: dict[str, Path] = {}

    def replace(match: re.Match[str]) -> str:
        href = match.group(2)
        target = (base / href).resolve()
        if (
            re.match(r"^[a-z][a-z0-9+.-]*:", href)
            or not target.is_file()
            or base.resolve() not in target.parents
        ):
            return match.group(0)
        relative = target.relative_to(base.resolve()).as_posix()
        images[f"plugins/{name}/{relative}"] = target
        return f"{match.group(1)}{name}/{relative}{match.group(3)}"

    return _IMAGE.sub(replace, markdown), images


def plugins_index() -> str:
    lines = [
        "# Plugin packages",
        "",
        "Separately installable packages under `plugins/`, each registering components through the "
        "`kplug` entry-point group (`pip install -e plugins/<name>`, then `kplug plugins` lists what "
        "they add). These pages are each package's own `README.md`, collected when the docs are built.",
        "",
        "| Package | What it adds |",
        "|---|---|",
    ]
    for name, _readme, description in plugin_packages():
        lines.append(f"| [{name}]({name}.md) | {description} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Links that leave docs/
# ---------------------------------------------------------------------------

_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")


def _page_target(target: Path, pages: set[str]) -> str | None:
    """The docs page a repository path corresponds to, if any."""
    try:
        relative = target.relative_to(DOCS).as_posix()
    except ValueError:
        relative = None
    if relative is not None and relative in pages:
        return relative
    try:
        parts = target.relative_to(PLUGINS).parts
    except ValueError:
        parts = ()
    if parts and (len(parts) == 1 or parts[1:] == ("README.md",)) and f"plugins/{parts[0]}.md" in pages:
        return f"plugins/{parts[0]}.md"
    if target == REPO / "README.md":
        return "index.md"
    return None


def rewrite_links(markdown: str, page_uri: str, source: Path, pages: set[str]) -> str:
    """Point relative links that leave ``docs/`` at the matching page, or show the repository path."""

    def replace(match: re.Match[str]) -> str:
        text, href = match.group(1), match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith("#"):
            return match.group(0)
        path, _, fragment = href.partition("#")
        target = (source.parent / path).resolve()
        page = _page_target(target, pages)
        if page is not None:
            link = posixpath.relpath(page, posixpath.dirname(page_uri) or ".")
            return f"[{text}]({link}{'#' + fragment if fragment else ''})"
        try:
            shown = target.relative_to(REPO).as_posix()
        except ValueError:
            return match.group(0)
        if text.strip("`") == shown or text.strip("`") == path:
            return f"`{shown}`"
        return f"{text} (`{shown}`)"

    return _LINK.sub(replace, markdown)


def with_reference(markdown: str) -> str:
    """plugin-hooks.md with its hook reference regenerated from kplug/plugin/spec.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "hook_reference", Path(__file__).with_name("hook_reference.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.with_reference(markdown)


# ---------------------------------------------------------------------------
# MkDocs events
# ---------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Fill the plugin-packages section of the navigation with one page per package."""
    pages = ["plugins/index.md"] + [{name: f"plugins/{name}.md"} for name, _, _ in plugin_packages()]
    for index, item in enumerate(config["nav"] or []):
        if isinstance(item, dict) and PLUGIN_NAV_TITLE in item:
            config["nav"][index] = {PLUGIN_NAV_TITLE: pages}
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages."""
    from mkdocs.structure.files import File

    generated = {
        "config-reference.md": config_reference(),
        "cli.md": cli_reference(),
        "plugins/index.md": plugins_index(),
    }
    for name, readme, _ in plugin_packages():
        text, images = collect_images(readme.read_text(encoding="utf-8"), readme.parent, name)
        generated[f"plugins/{name}.md"] = text
        _SOURCES[f"plugins/{name}.md"] = readme
        for uri, image in images.items():
            files.append(File.generated(config, uri, abs_src_path=str(image)))
    for uri, content in generated.items():
        _SOURCES.setdefault(uri, DOCS / uri)
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Regenerate the hook reference of plugin-hooks.md; rewrite links that point outside ``docs/``."""
    uri = page.file.src_uri
    if uri == "plugin-hooks.md":
        markdown = with_reference(markdown)
    pages = {file.src_uri for file in files.documentation_pages()}
    return rewrite_links(markdown, uri, _SOURCES.get(uri, DOCS / uri), pages)
