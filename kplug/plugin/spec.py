"""The kplug plugin contract: every hook a plugin may implement.

This module holds only hook specifications: empty functions whose docstrings say
when the hook is called, what it receives, what it returns, with an example.
A plugin implements any of them with ``@kplug.hookimpl`` (the same object as
``kplug.plugin.hookimpl``) and is discovered through the ``kplug`` entry-point group
(or passed in Python with ``kplug.fit(config, plugins=[...])``). Everything else a
plugin needs is in ``kplug.plugin``.

Component hooks take a ``register`` callback supplied by kplug (``kplug.plugin.Register``).
Call it once per component: ``register(name, factory, *, options=None, backends=None,
description=None, **extras)``; ``extras`` are the kind-specific settings listed in
``kplug.plugin.KINDS`` (e.g. a dataset's ``path_option``); a name a kind does not accept is a
``PluginError`` naming the accepted ones. kplug validates the name, records which
distribution (package and version) registered it and refuses duplicates.

Lifecycle hooks receive ``run``, a read-only ``kplug.plugin.RunContext`` (config, run
directory, components, data, model), never the trainer. They run at setup, epoch or fit
boundaries only, never inside the compiled train step, so they add nothing to the per-step
cost.

Call order. Every hook is called through one path (``Plugins.call_hook``; component hooks
when plugins load, ``kplug_configure`` through ``Plugins.configure``). Implementations run one
at a time in load order: the built-ins (``kplug/builtin/``), then installed plugins in
entry-point order, then plugins passed in Python in the order given. ``@hookimpl(tryfirst=True)``
moves an implementation to the front, ``trylast=True`` to the back. ``kplug_configure`` gives
each implementation the config the previous one returned; ``kplug_training_model`` stops at
the first implementation that returns a model.

Error policy. A ``kplug.KplugError`` (``ConfigError``, ``DataError``, ...) a plugin raises
on purpose reaches the user unchanged. Any other exception raised by an installed plugin
becomes a ``PluginError`` naming the hook, the plugin and its version, and how to run without
it (``KPLUG_DISABLE_PLUGINS=<name>``); in a component hook it disables that plugin (the others
still load). Exceptions of built-ins and of plugins passed in Python propagate unchanged: their
author is the caller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    import keras

    from kplug.config.schema import RunConfig
    from kplug.plugin.context import RunContext
    from kplug.plugin.registry import Register
    from kplug.train.trainer import FitResult

hookspec = pluggy.HookspecMarker("kplug")

# ---------------------------------------------------------------------------
# Components
# ---------------------------------------------------------------------------


@hookspec
def kplug_register_backbones(register: Register) -> None:
    """Register backbone factories: callables returning a ``keras.Model`` trunk.

    A backbone factory receives its config ``options`` as keyword arguments and
    ``input_shape`` (a tuple without the batch axis) when its signature
    accepts it. It returns a ``keras.Model`` (or layer) that maps inputs to
    features; kplug puts the heads on top.

    Register ``preprocessor=make`` for raw features that need preprocessing (text):
    ``make(**options)`` returns ``preprocess(features) -> array | dict[str, array]``,
    applied once to every split before training; dict keys become the model's inputs.

    Example::

        @kplug.hookimpl
        def kplug_register_backbones(register):
            register("tiny-mlp", tiny_mlp)   # tiny_mlp(units: int = 64) -> keras.Model
    """


@hookspec
def kplug_register_heads(register: Register) -> None:
    """Register head factories: callables returning a ``kplug.Head``.

    A head turns backbone features into logits and owns its loss, metrics,
    target kind (``"class"``, ``"multi_label"`` or ``"value"``) and the
    mapping from logits to probabilities used by ``predict``.

    Example::

        @kplug.hookimpl
        def kplug_register_heads(register):
            register("ordinal", OrdinalHead)   # OrdinalHead(num_classes: int) -> kplug.Head
    """


@hookspec
def kplug_register_augmentations(register: Register) -> None:
    """Register augmentation factories: callables returning a ``keras.layers.Layer``.

    The layer is placed in front of the backbone and must change its input only
    when called with ``training=True`` (Keras' random preprocessing layers do
    this already), so evaluation and prediction see clean inputs.

    Register with ``batch=True`` for augmentations that mix labels (MixUp, CutMix):
    the factory then returns ``transform(x, y, rng) -> (x, y)``, applied to each
    training batch in kplug's input pipeline with one-hot class targets.

    Example::

        @kplug.hookimpl
        def kplug_register_augmentations(register):
            register("flip", lambda mode="horizontal": keras.layers.RandomFlip(mode))
    """


@hookspec
def kplug_register_distributions(register: Register) -> None:
    """Register distribution strategies: callables returning a ``kplug.Distribution``.

    A distribution supplies the context (``scope()``) in which the model is
    built and trained, and describes the devices it uses for ``report.json``.
    Pass ``backends=("jax",)`` to ``register`` when it works on some backends
    only; kplug then refuses it at validation time on the others. Pass
    ``auto=offer`` (a callable returning a ``Distribution`` when it fits the
    devices found, else ``None``) and ``auto_priority=N`` to be considered by
    ``distribution: auto``. The optional checks and per-stage hooks a
    ``Distribution`` may override are listed in ``kplug/distribute/placement.py``.

    Example::

        @kplug.hookimpl
        def kplug_register_distributions(register):
            register("data-parallel", DataParallel, backends=("jax",), auto=offer, auto_priority=10)
    """


@hookspec
def kplug_register_precision_policies(register: Register) -> None:
    """Register precision policies: callables returning a Keras dtype policy or a ``kplug.Precision``.

    The returned value (e.g. ``"mixed_bfloat16"`` or a ``keras.DTypePolicy``)
    is set with ``keras.config.set_dtype_policy`` before the model is built. A
    ``kplug.Precision`` carries that policy plus two calls: ``configure_model(model)``
    once the model is built (e.g. to keep some layers in float32) and
    ``wrap_optimizer(optimizer)`` for each stage's optimizer (e.g. loss scaling).

    Example::

        @kplug.hookimpl
        def kplug_register_precision_policies(register):
            register("bf16", lambda: "mixed_bfloat16")
    """


@hookspec
def kplug_register_datasets(register: Register) -> None:
    """Register data sources: callables returning a ``kplug.Examples``.

    A data source reads its options (file paths, columns, ...) and returns the
    features and raw targets of every example. kplug filters, limits, maps
    labels and splits them afterwards, the same way for every source. Name the
    option that holds the main file with ``path_option=`` so that
    ``kplug evaluate RUN --data FILE`` can point the run's reader at another file.

    Example::

        @kplug.hookimpl
        def kplug_register_datasets(register):
            register("parquet", read_parquet, path_option="path")
    """


@hookspec
def kplug_register_callbacks(register: Register) -> None:
    """Register training callbacks: callables returning a ``keras.callbacks.Callback``.

    Callbacks named in the config's ``callbacks`` list are passed to every
    ``Model.fit`` call of the run.

    Example::

        @kplug.hookimpl
        def kplug_register_callbacks(register):
            register("early-stopping", keras.callbacks.EarlyStopping)
    """


@hookspec
def kplug_register_loggers(register: Register) -> None:
    """Register experiment loggers: callables returning a ``keras.callbacks.Callback``.

    Loggers named in the config's ``loggers`` list are built once per run (not per
    stage) and passed to every ``Model.fit`` call, so one log spans all stages; epoch
    indices count over all stages. A factory may take ``run_dir`` (the run directory,
    a ``Path``) and ``run_config`` (the ``RunConfig``), which kplug supplies; its other
    parameters are the logger's options. It must not write anything when called (the
    run directory may not exist yet): write from ``on_train_begin`` on. If the logger
    has a method ``on_run_end(result)``, kplug calls it with the ``FitResult`` once the
    run directory is complete (model, ``report.json``), e.g. to upload it.

    Example::

        @kplug.hookimpl
        def kplug_register_loggers(register):
            register("csv-copy", lambda run_dir: keras.callbacks.CSVLogger(run_dir / "log.csv"))
    """


@hookspec
def kplug_add_commands(commands: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``kplug`` command line.

    Called once when the ``kplug`` parser is built. ``commands`` is the parser's
    subparsers object: add a parser, its arguments and ``set_defaults(handler=...)``.
    The handler receives the parsed ``argparse.Namespace`` and returns the exit code;
    a ``KplugError`` it raises is printed as ``kplug: error: ...`` with exit code 2,
    like kplug's own commands. A plugin that takes a name kplug or another plugin already
    uses loses all its commands, with a warning naming it and the command.

    Example::

        @kplug.hookimpl
        def kplug_add_commands(commands):
            export = commands.add_parser("export", help="export a finished run")
            export.add_argument("run_dir")
            export.set_defaults(handler=lambda args: export_run(args.run_dir) or 0)
    """


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


@hookspec
def kplug_configure(config: RunConfig) -> dict[str, Any] | None:
    """Adjust a validated run config before anything is built.

    Called once per run, after validation. Return a dict of top-level fields to
    override (it is merged and validated again), or ``None`` to leave the config
    as it is.

    Example::

        @kplug.hookimpl
        def kplug_configure(config):
            if not config.callbacks:  # always guard against NaN losses
                return {"callbacks": [{"name": "terminate-on-nan"}]}
    """


@hookspec
def kplug_on_fit_start(run: RunContext, model: keras.Model) -> None:
    """Called once the model is built (and initialised from a checkpoint), before the first stage.

    ``run`` is the read-only ``RunContext`` of the run (config, run directory, components,
    data, heads). The model is not compiled yet: each stage compiles it with its own optimizer.

    Example::

        @kplug.hookimpl
        def kplug_on_fit_start(run, model):
            print(f"training {model.count_params()} parameters")
    """


@hookspec(firstresult=True)
def kplug_training_model(run: RunContext, model: keras.Model) -> keras.Model | None:
    """Return a model to compile and fit in place of the run's model, or ``None``.

    Called once per run, after ``kplug_on_fit_start``. The returned model wraps ``model``
    (its variables include all of ``model``'s) and adds what training needs besides it,
    e.g. a distiller that adds a frozen teacher's loss terms and a learned projection.
    kplug then compiles, fits and checkpoints (and on resume restores) the returned model,
    while ``model`` stays the run's model: the one evaluated, saved as ``model.keras`` and
    reported. It must compile like a kplug model (``compile(optimizer, loss, metrics)``
    with the heads' losses and metrics). The first plugin that returns a model wins.

    Example::

        @kplug.hookimpl
        def kplug_training_model(run, model):
            if run.config.distill is not None:
                return MyDistiller(teacher=load_teacher(run.config), student=model)
    """


@hookspec
def kplug_on_stage_start(run: RunContext, model: keras.Model, stage: int) -> None:
    """Called at the start of every stage, after its trainable set is applied, before it compiles.

    ``stage`` is the 0-based index into ``run.stages``. A
    plugin may change which variables train in this stage here (the optimizer is built
    afterwards, from ``model.trainable_variables``); e.g. LoRA keeps base kernels frozen.

    Example::

        @kplug.hookimpl
        def kplug_on_stage_start(run, model, stage):
            print(f"stage {stage + 1}: {len(model.trainable_variables)} trainable variables")
    """


@hookspec
def kplug_on_epoch_end(run: RunContext, epoch: int, logs: dict[str, float]) -> None:
    """Called after every epoch with the epoch index (counted over all stages) and its logs.

    Runs from a Keras callback at the epoch boundary; only added to ``fit`` when
    some plugin implements it.

    Example::

        @kplug.hookimpl
        def kplug_on_epoch_end(run, epoch, logs):
            print(epoch, logs["loss"])
    """


@hookspec
def kplug_on_fit_end(run: RunContext, result: FitResult) -> None:
    """Called once after the last stage, when the run directory is written.

    ``result`` is the ``FitResult`` ``kplug.fit`` returns; a plugin may add a section to
    ``result.report`` and rewrite ``report.json`` with ``kplug.plugin.write_json``.

    Example::

        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            upload(result.run_dir)
    """
