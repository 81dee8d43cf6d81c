"""The public plugin API: everything a kplug plugin package imports.

A plugin package imports ``kplug.plugin`` (and the top-level ``kplug`` functions such as
``kplug.fit``), never kplug's internal modules, which may change between releases; a test
(``tests/plugin/test_public_api.py``) holds every package under ``plugins/`` to this.

Hooks
    ``hookimpl`` marks a hook implementation (the same object as ``kplug.hookimpl``);
    ``spec`` is the module of hook specifications (call order and error policy are
    documented there and in docs/plugin-hooks.md).

Registration
    ``Register`` is the type of the ``register`` callback a component hook receives;
    ``KINDS`` maps each component kind to its ``Kind`` (hook and accepted ``Extra`` settings);
    ``Component`` is one registered component (``component.extra(name)`` reads its extras);
    ``Options`` is the pydantic base class for a component's options model (unknown
    options are errors).

Contracts
    ``Head`` (heads return one), ``Precision`` (precision policies may return one),
    ``Distribution`` (distributions return one), ``Examples`` (data sources return one, or a
    ``Stream`` for examples read from a Python object every epoch),
    ``Preset`` (a backbone's ``presets=`` callable returns them, for ``kplug presets``).

Lifecycle
    ``RunContext``, the read-only run lifecycle hooks receive as ``run``; ``FitResult``
    their ``result``; ``StagePlan``, one stage as ``run.stages[i]`` resolves it; ``load_finished_run`` / ``FinishedRun`` for commands that post-process
    a finished run directory (quantize, export).

Layer paths (the one pattern dialect of core and every plugin: ``*`` and ``**`` globs, or
``re:`` regular expressions, matched against paths such as ``backbone/dense_1``)
    ``iter_layers(model)`` (every nested layer with its path), ``variable_paths(model)``
    (every variable by its path), ``PathPattern.compile(pattern, where)`` (a checked pattern,
    ``.matches(path)``), ``no_match_error(where, pattern, paths)`` (the error for a pattern
    that matches nothing, listing the paths that exist), ``bare_name_hint(pattern, layers)``
    (its hint when the pattern matches bare layer names such as ``conv1``).

Helpers
    ``preset_directories()`` / ``find_preset_directory(name)``: the local preset directories
    the user registered in ``KPLUG_PRESETS`` (``PresetDirectory`` records);
    ``validation_problems(error, data, where=..., schema=...)`` (a pydantic error as kplug's
    ``field = value: what is allowed`` lines, for a plugin's own config section);
    ``load_model_file(path)`` (a ``.keras`` file, with kplug's and the plugins' layers);
    the run-directory file names (``MODEL_FILE``, ``REPORT_FILE``, ``CONFIG_FILE``,
    ``LABELS_FILE``, ``METRICS_FILE``) and writers (``write_json``, ``atomic_write``,
    ``save_model``, ``prepare_run_dir``); ``process_rank()``, ``world_size()``,
    ``process_group()`` (rank, world size, coordinator, from torchrun's or SLURM's variables)
    and ``sharding_table`` for distributions.

Errors
    ``KplugError`` and its kinds ``ConfigError``, ``DataError``, ``PluginError``,
    ``CheckpointError``, ``TrainingError``; ``first_line(error)`` for short messages.

Names are imported when first used (PEP 562), so ``import kplug.plugin`` and registering
components load no backend or model library.

Example::

    from kplug import plugin

    @plugin.hookimpl
    def kplug_register_datasets(register: plugin.Register) -> None:
        register("parquet", read_parquet, path_option="path")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kplug.config.errors import validation_problems
    from kplug.config.schema import Strict as Options
    from kplug.data.example_set import Examples
    from kplug.data.streams import Stream
    from kplug.distribute.process_group import ProcessGroup, process_group
    from kplug.distribute.processes import process_rank, world_size
    from kplug.distribute.sharding import sharding_table
    from kplug.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        KplugError,
        PluginError,
        TrainingError,
        first_line,
    )
    from kplug.model.checkpoint_init import load_model_file
    from kplug.model.paths import PathPattern, bare_name_hint, iter_layers, no_match_error, variable_paths
    from kplug.plugin import spec
    from kplug.plugin.context import RunContext
    from kplug.plugin.distribution import Distribution
    from kplug.plugin.finished import FinishedRun, load_finished_run
    from kplug.plugin.head import Head
    from kplug.plugin.manager import Plugins, hookimpl
    from kplug.plugin.precision import Precision
    from kplug.plugin.presets import Preset, PresetDirectory, find_preset_directory, preset_directories
    from kplug.plugin.registry import KINDS, Component, Extra, Kind, Register
    from kplug.train.rundir import (
        CONFIG_FILE,
        LABELS_FILE,
        METRICS_FILE,
        MODEL_FILE,
        REPORT_FILE,
        atomic_write,
        prepare_run_dir,
        save_model,
        write_json,
    )
    from kplug.train.stage_plan import StagePlan
    from kplug.train.trainer import FitResult

# public name -> (module, name in that module)
_EXPORTS: dict[str, tuple[str, str]] = {
    # hooks
    "hookimpl": ("kplug.plugin.manager", "hookimpl"),
    "spec": ("kplug.plugin.spec", ""),
    "Plugins": ("kplug.plugin.manager", "Plugins"),
    # registration
    "Register": ("kplug.plugin.registry", "Register"),
    "KINDS": ("kplug.plugin.registry", "KINDS"),
    "Kind": ("kplug.plugin.registry", "Kind"),
    "Extra": ("kplug.plugin.registry", "Extra"),
    "Component": ("kplug.plugin.registry", "Component"),
    "Options": ("kplug.config.schema", "Strict"),
    # contracts
    "Head": ("kplug.plugin.head", "Head"),
    "Precision": ("kplug.plugin.precision", "Precision"),
    "Distribution": ("kplug.plugin.distribution", "Distribution"),
    "Examples": ("kplug.data.example_set", "Examples"),
    "Stream": ("kplug.data.streams", "Stream"),
    "Preset": ("kplug.plugin.presets", "Preset"),
    "PresetDirectory": ("kplug.plugin.presets", "PresetDirectory"),
    "preset_directories": ("kplug.plugin.presets", "preset_directories"),
    "find_preset_directory": ("kplug.plugin.presets", "find_preset_directory"),
    # lifecycle
    "RunContext": ("kplug.plugin.context", "RunContext"),
    "FitResult": ("kplug.train.trainer", "FitResult"),
    "FinishedRun": ("kplug.plugin.finished", "FinishedRun"),
    "load_finished_run": ("kplug.plugin.finished", "load_finished_run"),
    # helpers
    "iter_layers": ("kplug.model.paths", "iter_layers"),
    "variable_paths": ("kplug.model.paths", "variable_paths"),
    "PathPattern": ("kplug.model.paths", "PathPattern"),
    "no_match_error": ("kplug.model.paths", "no_match_error"),
    "bare_name_hint": ("kplug.model.paths", "bare_name_hint"),
    "validation_problems": ("kplug.config.errors", "validation_problems"),
    "load_model_file": ("kplug.model.checkpoint_init", "load_model_file"),
    "StagePlan": ("kplug.train.stage_plan", "StagePlan"),
    "CONFIG_FILE": ("kplug.train.rundir", "CONFIG_FILE"),
    "LABELS_FILE": ("kplug.train.rundir", "LABELS_FILE"),
    "METRICS_FILE": ("kplug.train.rundir", "METRICS_FILE"),
    "MODEL_FILE": ("kplug.train.rundir", "MODEL_FILE"),
    "REPORT_FILE": ("kplug.train.rundir", "REPORT_FILE"),
    "atomic_write": ("kplug.train.rundir", "atomic_write"),
    "prepare_run_dir": ("kplug.train.rundir", "prepare_run_dir"),
    "save_model": ("kplug.train.rundir", "save_model"),
    "write_json": ("kplug.train.rundir", "write_json"),
    "process_rank": ("kplug.distribute.processes", "process_rank"),
    "process_group": ("kplug.distribute.process_group", "process_group"),
    "ProcessGroup": ("kplug.distribute.process_group", "ProcessGroup"),
    "world_size": ("kplug.distribute.processes", "world_size"),
    "sharding_table": ("kplug.distribute.sharding", "sharding_table"),
    # errors
    "KplugError": ("kplug.errors", "KplugError"),
    "ConfigError": ("kplug.errors", "ConfigError"),
    "DataError": ("kplug.errors", "DataError"),
    "PluginError": ("kplug.errors", "PluginError"),
    "CheckpointError": ("kplug.errors", "CheckpointError"),
    "TrainingError": ("kplug.errors", "TrainingError"),
    "first_line": ("kplug.errors", "first_line"),
}

__all__ = [
    "CONFIG_FILE",
    "CheckpointError",
    "Component",
    "ConfigError",
    "DataError",
    "Distribution",
    "Examples",
    "Stream",
    "Extra",
    "FinishedRun",
    "FitResult",
    "Head",
    "KINDS",
    "Kind",
    "KplugError",
    "LABELS_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "Options",
    "PathPattern",
    "ProcessGroup",
    "PluginError",
    "Plugins",
    "Precision",
    "Preset",
    "PresetDirectory",
    "REPORT_FILE",
    "Register",
    "RunContext",
    "StagePlan",
    "TrainingError",
    "atomic_write",
    "bare_name_hint",
    "find_preset_directory",
    "first_line",
    "hookimpl",
    "iter_layers",
    "load_finished_run",
    "load_model_file",
    "no_match_error",
    "prepare_run_dir",
    "preset_directories",
    "process_group",
    "process_rank",
    "save_model",
    "sharding_table",
    "spec",
    "validation_problems",
    "variable_paths",
    "world_size",
    "write_json",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'kplug.plugin' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # look it up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
