"""Layer paths and the one pattern dialect that core and every plugin use to select layers and variables.

**Layer paths.** Every layer of a kplug model has a stable path built from layer
names, not from Keras' build-time variable paths (which depend on the order models
were created in), so a path is the same in the run that saved a model and the run
that loads it:

- ``backbone`` and everything inside it: ``backbone/conv1``, ``backbone/block2/attention``;
- ``heads/<id>`` for each head and its layers: ``heads/digits``, ``heads/digits/logits``;
- ``inputs`` and ``augment`` for the model's input and augmentation layers.

A variable's path is its layer's path and the variable's name:
``backbone/conv1/kernel``, ``heads/digits/logits/bias``.

**Patterns.** A pattern is a glob by default and a regular expression when written
``re:<regex>``; either must match a whole path:

- globs (``fnmatch``): ``*`` matches any characters, ``/`` included
  (``backbone/*`` is everything in the backbone, ``*norm*`` every layer whose path
  holds "norm"), ``?`` one character, ``[abc]`` one of a set;
- ``re:backbone/block[34].*`` is a Python regular expression (``re.fullmatch``).

A pattern selects a **layer** when it matches the layer's path; the layer is
selected with everything inside it (``trainable``, ``frozen``,
``precision.options.float32_layers``). A pattern selects a **variable** when it
matches the variable's path or the path of a layer that holds it (``backbone/conv1``,
``backbone/conv1/kernel`` and ``*/kernel`` all select ``backbone/conv1/kernel``):
``learning_rates`` and the ``model-parallel`` layout rules. Plugins select with the same
dialect (LoRA and pruning ``targets``, ``kplug quantize --keep``) through ``kplug.plugin``.

A pattern that selects nothing is an error naming the config field, the pattern and
the paths that exist. ``model.backbone.init.map`` is not a selection but a rewrite
(target path regex -> source path with ``\\1`` groups) and keeps plain regexes.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import keras

from kplug.errors import ConfigError

STRUCTURAL_LAYERS = ("inputs", "augment", "backbone")
REGEX_PREFIX = "re:"
DIALECT = "globs ('backbone/*', 'heads/*/logits') or regexes written 're:backbone/block[34].*'"
SHOWN = 40  # paths listed in an error


def _children(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def top_level_path(layer: keras.layers.Layer) -> str:
    """Path of a top-level layer of a kplug model: ``backbone``, ``inputs``, ``augment`` or ``heads/<id>``."""
    return layer.name if layer.name in STRUCTURAL_LAYERS else f"heads/{layer.name}"


def iter_layers(model: keras.Model) -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yield ``(path, layer)`` for every layer below the model's top level, parents first.

    Example::

        dict(iter_layers(model))["backbone/conv1"]  # the backbone's layer named conv1
    """

    def walk(layer: keras.layers.Layer, path: str) -> Iterator[tuple[str, keras.layers.Layer]]:
        yield path, layer
        for child in _children(layer):
            yield from walk(child, f"{path}/{child.name}")

    for layer in model.layers:
        yield from walk(layer, top_level_path(layer))


def variable_paths(model: keras.Model) -> dict[str, keras.Variable]:
    """Every variable of a kplug model by its stable path (``backbone/conv1/kernel``), in layer order."""
    paths: dict[str, keras.Variable] = {}
    for path, layer in iter_layers(model):
        nested = {id(v) for child in _children(layer) for v in child.weights}
        for variable in layer.weights:
            if id(variable) not in nested:
                paths[f"{path}/{variable.name}"] = variable
    return paths


def enclosing_layers(variable_path: str) -> list[str]:
    """The layer paths holding a variable, innermost first.

    Example::

        enclosing_layers("backbone/conv1/kernel") == ["backbone/conv1", "backbone"]
    """
    parts = variable_path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


@dataclass(frozen=True)
class PathPattern:
    """One compiled pattern of the dialect (see the module docstring).

    Attributes:
        text: the pattern as the user wrote it (``backbone/*``, ``re:heads/.*``).
        regex: the compiled regular expression it stands for, matched on whole paths.
    """

    text: str
    regex: re.Pattern[str]

    @classmethod
    def compile(cls, text: str, where: str) -> PathPattern:
        """Compile a glob or ``re:`` pattern; ``where`` is the config field, named in errors.

        Raises:
            ConfigError: an empty pattern, or a ``re:`` pattern that is not a valid regex.
        """
        if not isinstance(text, str) or not text or text == REGEX_PREFIX:
            raise ConfigError(f"{where}: {text!r} is not a layer-path pattern; write {DIALECT}.")
        if text.startswith(REGEX_PREFIX):
            try:
                return cls(text, re.compile(text[len(REGEX_PREFIX) :]))
            except re.error as error:
                raise ConfigError(f"{where}: {text!r} is not a valid regex ({error}).") from None
        return cls(text, re.compile(fnmatch.translate(text)))

    def matches(self, path: str) -> bool:
        """Whether the pattern matches the whole of ``path`` (a layer or variable path)."""
        return self.regex.fullmatch(path) is not None

    def matches_variable(self, variable_path: str) -> bool:
        """Whether the pattern selects a variable: it matches its path or a layer holding it."""
        return self.matches(variable_path) or any(self.matches(p) for p in enclosing_layers(variable_path))

    def __str__(self) -> str:
        return self.text


def check_pattern(pattern: str, where: str) -> PathPattern:
    """Compile ``pattern``, failing with a ``ConfigError`` that names ``where`` and the pattern."""
    return PathPattern.compile(pattern, where)


def matches(pattern: str | PathPattern, path: str) -> bool:
    """Whether a pattern (text or compiled) matches the whole of a layer or variable path.

    Example::

        matches("backbone/*", "backbone/conv1") and matches("re:heads/.*", "heads/digits")
    """
    compiled = pattern if isinstance(pattern, PathPattern) else PathPattern.compile(pattern, "pattern")
    return compiled.matches(path)


def no_match_error(
    where: str, pattern: str, paths: Iterable[str], kind: str = "layer", hint: str = ""
) -> ConfigError:
    """The error for a pattern that selects nothing: the field, the pattern and the paths that exist."""
    paths = list(paths)
    shown = ", ".join(paths[:SHOWN]) + (", ..." if len(paths) > SHOWN else "")
    return ConfigError(
        f"{where}: pattern {pattern!r} matches no {kind}.{' ' + hint if hint else ''} "
        f"{kind.capitalize()} paths: {shown}. Patterns are {DIALECT}."
    )


def bare_name_hint(pattern: PathPattern, layers: Iterable[tuple[str, keras.layers.Layer]]) -> str:
    """For a pattern that matches no layer path but matches layer *names* (``conv1``): the paths to write.

    Returns:
        A sentence for ``no_match_error``'s ``hint`` (``""`` when no layer name matches either).
    """
    by_name = [path for path, layer in layers if pattern.matches(layer.name)]
    if not by_name:
        return ""
    text = pattern.text
    anywhere = f"re:.*/{text[3:]}" if text.startswith(REGEX_PREFIX) else f"*/{text}"
    return (
        f"Patterns match layer paths, not bare layer names: write {by_name[0]!r} or {anywhere!r} "
        f"to select the layers named so ({', '.join(by_name[:8])})."
    )


def matching_layers(paths: list[str], patterns: Iterable[str], where: str) -> set[str]:
    """The layer paths matched by any pattern; a pattern that matches none is an error.

    Args:
        paths: the model's layer paths (``[p for p, _ in iter_layers(model)]``).
        patterns: glob or ``re:`` patterns from the config field ``where``.
    """
    matched: set[str] = set()
    for text in patterns:
        pattern = PathPattern.compile(text, where)
        hits = [path for path in paths if pattern.matches(path)]
        if not hits:
            raise no_match_error(where, text, paths)
        matched.update(hits)
    return matched
