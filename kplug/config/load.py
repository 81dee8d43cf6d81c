"""Read a run config from YAML, JSON or TOML, validate it, and write the resolved one back.

Syntax errors name the file, line and column; validation errors name the field
path, the value and what is allowed (``kplug.config.errors``).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pydantic
import yaml

from kplug.config.errors import format_validation_error
from kplug.config.paths import resolve_relative_paths
from kplug.config.schema import RunConfig
from kplug.errors import ConfigError


def parse_config(data: dict[str, Any] | RunConfig) -> RunConfig:
    """Validate a config dict (or return a ``RunConfig`` unchanged).

    Raises:
        ConfigError: listing every invalid field with its path, value and what is allowed.
    """
    if isinstance(data, RunConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(
            f"A run config must be a mapping of fields (data, model, train, ...), got {type(data).__name__}."
        )
    try:
        return RunConfig.model_validate(data)
    except pydantic.ValidationError as error:
        raise ConfigError(format_validation_error(error, data, RunConfig)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML, JSON or TOML file with safe parsers (no code is executed)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"Config file {str(path)!r} is a directory; give a .yaml, .json or .toml file.")
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"Config file {str(path)!r} is not UTF-8 text: {error}.") from None
    try:
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise ConfigError(
                f"Config file {str(path)!r} has the extension {suffix!r}; use .yaml, .yml, .json or .toml."
            )
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_message(path, error)) from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: JSON syntax error at line {error.lineno}: {error.msg}.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: TOML syntax error: {error}.") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a run config needs at least data and model.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a run config must be a mapping of fields (data, model, train, ...), "
            f"got {type(data).__name__}."
        )
    return data


def _yaml_message(path: Path, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"{path}: YAML syntax error{where}: {detail}. Check the indentation and brackets there."


def load_config(source: str | Path | dict[str, Any] | RunConfig) -> RunConfig:
    """Load and validate a run config from a file path, a dict or a ``RunConfig``.

    Relative input paths in a file are read relative to the file's directory; in a dict,
    relative to the working directory (``kplug.config.paths``).
    """
    if isinstance(source, (str, Path)):
        return parse_config(resolve_relative_paths(read_config_file(source), Path(source).parent))
    return parse_config(source)


def dump_config(config: RunConfig, path: Path) -> None:
    """Write the resolved config as YAML, atomically (a killed run never leaves half a config)."""
    from kplug.train.rundir import atomic_write

    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))
