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
    """Called once when plugins load, to add backbones: the shared trunk of the model.

    The factory receives its config ``options`` as keyword arguments and ``input_shape`` (a tuple
    without the batch axis) when its signature accepts it. It returns a ``keras.Model`` (or a
    layer) mapping inputs to features. kplug renames it ``backbone``, places it after the
    augmentations and puts the heads on top, so layer paths such as ``backbone/hidden`` are what
    ``trainable`` patterns and checkpoint assignment maps refer to. Give layers stable names.
    The backbone's top-level layers that hold weights are its *blocks*, input to output:
    ``train_last_blocks`` and ``layer_decay`` count them.

    A backbone whose raw features need preprocessing (text to token ids) names its default
    preprocessor, a component of ``kplug_register_preprocessors``:
    ``register("minilm-l6", minilm, preprocessor="minilm-l6-tokenizer")``; the config's
    ``model.preprocessor`` replaces it. kplug applies the built ``preprocess(features) ->
    array | dict[str, array]`` once to every split (and to ``kplug evaluate`` / ``predict`` data)
    before training; the model input is then a dict of ``keras.Input``s named by the dict's keys,
    and ``input_shape`` is a dict of their shapes. A factory that accepts ``preprocessor``
    receives the built one, e.g. to size its embeddings to the tokenizer's vocabulary.

    A backbone that loads pretrained weights lists them for ``kplug presets`` with
    ``presets=``: a callable returning ``kplug.plugin.Preset`` records (what the config writes,
    where it is on this machine or ``None``, where it comes from), called only by that command,
    so it may look at the disk but must not download. ``kplug.plugin.preset_directories()``
    gives the local preset directories the user registered in ``KPLUG_PRESETS``:
    ``register("resnet", resnet, presets=resnet_presets)``.

    Example::

        import keras
        import kplug


        def tiny_mlp(input_shape: tuple[int, ...], units: int = 64) -> keras.Model:
            '''A one-layer MLP backbone.'''
            inputs = keras.Input(input_shape, name="features")
            x = keras.layers.Flatten(name="flatten")(inputs)
            x = keras.layers.Dense(units, activation="relu", name="hidden")(x)
            return keras.Model(inputs, x, name="tiny_mlp")


        @kplug.hookimpl
        def kplug_register_backbones(register):
            register("tiny-mlp", tiny_mlp)

    Config::

        model:
          backbone: {name: tiny-mlp, options: {units: 32}}
    """


@hookspec
def kplug_register_preprocessors(register: Register) -> None:
    """Register preprocessor factories: callables returning ``preprocess(features) -> inputs``.

    A preprocessor turns the raw features of N examples (e.g. N strings) into the model
    inputs of N examples: an array, or a dict of arrays whose keys become the model's
    named inputs (``token_ids``, ``padding_mask``). kplug builds it once per run from
    ``model.preprocessor.options`` (or the backbone's default preprocessor) and applies it
    to every split before training and to ``kplug evaluate`` / ``predict`` data.

    An option both the backbone and its preprocessor declare (a checkpoint ``path``) is
    written once, in the backbone's options, and passed to both. Options of the
    preprocessor found in ``model.backbone.options`` (configs written before preprocessors
    were components) are moved to it.

    Example::

        @kplug.hookimpl
        def kplug_register_preprocessors(register):
            register("bert-tokenizer", bert_tokenizer)   # bert_tokenizer(sequence_length: int = 128)
    """


@hookspec
def kplug_register_heads(register: Register) -> None:
    """Called once when plugins load, to add task heads.

    The factory returns a ``kplug.plugin.Head``. A head owns the layers that turn backbone
    features into logits (``Head.layer``, by default a ``Dense`` with ``output_units()`` logits in
    float32), its loss (``Head.loss(label_smoothing)``), its metrics, the kind of target it learns
    (``target_kind``: ``"class"``, ``"multi_label"`` or ``"value"``; kplug encodes the data's
    targets to match) and how ``kplug.predict`` turns logits into probabilities
    (``Head.probabilities``) and decisions (``Head.decide``). If the factory has a ``num_classes``
    option left unset in the config, kplug fills it in from the data. Returning anything but a
    ``Head`` is a ``PluginError``. A factory that is not a ``Head`` subclass with a
    ``target_kind`` attribute registers with ``target_kind=...``.

    Example::

        import keras
        import numpy as np
        from kplug import plugin


        class OrdinalHead(plugin.Head):
            '''Ordered classes as cumulative binary decisions (label k: the first k outputs are 1).'''

            target_kind = "class"

            def __init__(self, num_classes: int | None = None, dropout: float = 0.0) -> None:
                super().__init__(dropout)
                self.num_classes = num_classes

            def output_units(self) -> int:
                return int(self.num_classes) - 1

            def loss(self, label_smoothing: float = 0.0):
                thresholds = self.output_units()

                def cumulative_crossentropy(y_true, logits):
                    ranks = keras.ops.arange(thresholds, dtype="float32")
                    labels = keras.ops.cast(keras.ops.reshape(y_true, (-1, 1)), "float32")
                    targets = keras.ops.cast(labels > ranks, "float32")
                    return keras.losses.binary_crossentropy(targets, logits, from_logits=True)

                return cumulative_crossentropy

            def probabilities(self, logits: np.ndarray) -> np.ndarray:
                return 1.0 / (1.0 + np.exp(-logits))

            def decide(self, probabilities: np.ndarray) -> np.ndarray:
                return (probabilities > 0.5).sum(axis=-1)


        @plugin.hookimpl
        def kplug_register_heads(register):
            register("ordinal", OrdinalHead)

    Config::

        model:
          heads:
            - {name: ordinal, target: grade}
    """


@hookspec
def kplug_register_augmentations(register: Register) -> None:
    """Called once when plugins load, to add data augmentations.

    The factory returns a ``keras.layers.Layer``. The run's ``augment`` list becomes one
    ``keras.Sequential`` placed between the model input and the backbone, so augmentation runs
    on every backend on the device, as part of the model. The layer must change its input only
    when called with ``training=True`` (Keras' random preprocessing layers already do), so that
    evaluation and prediction see clean inputs. Use Keras' seeded random ops so that seeded
    runs repeat.

    An augmentation that needs the labels (MixUp, CutMix) registers with ``batch=True``; its
    factory returns ``transform(x, y, rng) -> (x, y)``, which kplug applies to every training
    batch in its input pipeline (numpy arrays in and out, ``rng`` a seeded
    ``numpy.random.Generator``, so a resumed run repeats it). With a batch augmentation, class
    targets reach the transform and the loss as one-hot float rows and heads train with
    ``Head.soft_loss`` (classification: categorical cross-entropy with the run's label smoothing).

    Example::

        import keras
        import kplug


        def flip(mode: str = "horizontal") -> keras.layers.Layer:
            '''Random flips of images.'''
            return keras.layers.RandomFlip(mode, name="flip")


        @kplug.hookimpl
        def kplug_register_augmentations(register):
            register("flip", flip)

    Config::

        augment:
          - {name: flip, options: {mode: horizontal_and_vertical}}
    """


@hookspec
def kplug_register_distributions(register: Register) -> None:
    """Called once when plugins load, to add distribution strategies (device placement).

    The factory returns a ``kplug.plugin.Distribution``. Its ``scope()`` is a context manager in
    which kplug builds the model and optimizer and runs every training stage; its ``describe()``
    returns the placement recorded under ``distribution`` in ``report.json``. Strategies are
    usually backend-specific: register them with ``backends=(...)`` so that a run on another
    backend is refused at validation time, and import the backend library inside the
    strategy, never at module level.

    Besides ``scope()`` and ``describe(model)``, a ``Distribution`` may override these (all
    optional; the base class is one device in one process):

    - ``replicas``, ``processes``, ``rank``: how many replicas share a global batch, how many
      processes train together, and this process's rank (only rank 0 writes the run directory).
    - ``check_model(model)``: called once the model is built, before training (e.g. refuse a
      layout rule that matched no variable).
    - ``check_batches(split, rows, batch_size, where)``: called for each split and batch size
      before anything is written; the base refuses a batch size that is not a multiple of
      ``replicas``.
    - ``batch_multiple(split)``: the number every batch of a split must split into (the base:
      ``replicas`` when ``even_last_batch``); kplug pads a shorter last batch with zero-weight
      rows, keeping losses, gradients and metrics those of the real rows.
    - ``shard_batches(batches)``: this process's share of each global training batch
      (multi-process strategies); ``batches`` is kplug's seeded batch stream, which every
      process reads in the same order.
    - ``prepare_stage(model)``: after each stage is compiled (e.g. wrap in
      DistributedDataParallel).
    - ``callbacks()``: callbacks run before kplug's own (e.g. average logs over processes).

    ``distribution: auto`` tries every registered distribution that passes ``auto=`` to
    ``register``: a callable returning a ``Distribution`` when it fits the machine, else
    ``None``, tried by ``auto_priority`` (highest first); ``kplug doctor`` lists the offers in that
    order. ``kplug train --nproc N`` (torchrun's engine), torchrun and ``srun`` start N processes;
    each has torchrun's variables (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``; kplug sets them from SLURM's under ``srun``) and on TensorFlow its ``TF_CONFIG``
    (for ``tf.distribute.MultiWorkerMirroredStrategy``); a distribution whose ``processes`` differs
    from ``WORLD_SIZE`` is refused, so N processes never train N unrelated models.
    ``kplug.plugin.process_rank()``, ``world_size()``, ``process_group()`` and ``sharding_table`` help implement
    one; the full implementation is the kplug-distribute plugin package.

    Example::

        import contextlib
        import keras
        from kplug import plugin


        class DataParallel(plugin.Distribution):
            '''Replicate the model on every device and split each batch between them.'''

            name = "data-parallel"

            @contextlib.contextmanager
            def scope(self):
                previous = keras.distribution.distribution()
                keras.distribution.set_distribution(keras.distribution.DataParallel())
                try:
                    yield
                finally:
                    keras.distribution.set_distribution(previous)


        @plugin.hookimpl
        def kplug_register_distributions(register):
            register("data-parallel", DataParallel, backends=("jax",))

    Config::

        distribution: {name: data-parallel}
    """


@hookspec
def kplug_register_precision_policies(register: Register) -> None:
    """Called once when plugins load, to add numeric precision policies.

    The factory returns a Keras dtype policy: a name such as ``"mixed_bfloat16"`` or a
    ``keras.DTypePolicy``. kplug sets it with ``keras.config.set_dtype_policy`` before the model
    is built and restores the previous policy when the run ends. Head logits stay float32
    whatever the policy. The config chooses it with ``precision.policy`` (options in
    ``precision.options``).

    A factory may instead return a ``kplug.plugin.Precision``: its ``policy`` is set the same
    way, then kplug calls ``configure_model(model)`` once the model is built (before checkpoint
    weights are loaded; e.g. to keep some layers in float32 by setting their ``dtype_policy``)
    and passes each stage's optimizer through ``wrap_optimizer(optimizer)`` (e.g. to add
    ``keras.optimizers.LossScaleOptimizer``). ``describe()`` adds its settings to
    ``report.json`` (``precision_settings``); ``report.json`` also records every layer's compute
    and variable dtypes (``layer_dtypes``) whatever the policy. The kplug-precision plugin
    package is a full example.

    Example::

        import kplug


        def bf16() -> str:
            '''bfloat16 compute with float32 variables.'''
            return "mixed_bfloat16"


        @kplug.hookimpl
        def kplug_register_precision_policies(register):
            register("bf16", bf16)

    Config::

        precision: {policy: bf16}
    """


@hookspec
def kplug_register_datasets(register: Register) -> None:
    """Called once when plugins load, to add data sources.

    The factory reads its options (file paths, columns, ...) and returns a
    ``kplug.plugin.Examples``: the ``features`` array (one row per example) and the raw
    ``targets`` by name (``"label"`` by default; integers or strings, kplug maps class labels to
    ids), optionally with ``label_names``. kplug then applies ``data.where``, ``data.limit`` and
    the seeded train/validation/test split the same way for every source. Raise
    ``kplug.plugin.DataError`` with the file name and what is wrong when the data cannot be read.

    Pass ``path_option=`` to ``register`` (the option holding the main file) so that
    ``kplug evaluate`` and ``kplug predict`` can read another file with the run's own reader, and
    ``target_options=`` for options holding other files of the training data, cleared when
    ``--data FILE`` is given. ``in_memory=True`` marks a source whose data lives only in Python
    (like ``arrays``): it is not saved with the run, so ``evaluate`` / ``predict`` need the
    examples passed again as ``data={...}``.

    A source that reads a Python object every epoch instead of loading it (a generator, a
    data loader) returns a ``kplug.plugin.Stream(read, source, seekable, batched)``:
    ``read(start)`` iterates ``(x, y)`` items from item ``start``. kplug reads it once for its
    targets, then every epoch in the run's batch size; ``seekable=True`` (``read`` can start
    at any item) keeps mid-epoch resume exact, otherwise a run resumes at the start of the
    interrupted epoch. A factory that has a ``categories`` option is given the trained run's
    one-hot categories of text columns (``categories.json``) when new data is read.

    Example::

        import numpy as np
        from kplug import plugin


        def parquet(path: str, label: str = "label") -> plugin.Examples:
            '''A Parquet file: numeric feature columns and a label column.'''
            import pandas as pd

            frame = pd.read_parquet(path)
            if label not in frame:
                raise plugin.DataError(f"{path}: no column {label!r}; columns: {', '.join(frame.columns)}.")
            features = frame.drop(columns=[label]).to_numpy(dtype=np.float32)
            return plugin.Examples(features, {"label": frame[label].to_numpy()})


        @plugin.hookimpl
        def kplug_register_datasets(register):
            register("parquet", parquet, path_option="path")

    Config::

        data:
          source: parquet
          options: {path: data/train.parquet}
    """


@hookspec
def kplug_register_callbacks(register: Register) -> None:
    """Called once when plugins load, to add training callbacks.

    The factory returns a ``keras.callbacks.Callback``. Every callback named in the config's
    ``callbacks`` list is passed to each stage's ``Model.fit`` call; kplug builds a fresh
    instance for every stage, so state such as early-stopping patience starts over at each
    stage. A Keras callback class can be registered directly: its ``__init__`` parameters are
    its options. Lifecycle hooks read a callback's settings with ``run.callback(name)``.

    Example::

        import keras
        import kplug


        class PrintEpoch(keras.callbacks.Callback):
            '''Print one line per epoch.'''

            def __init__(self, prefix: str = "epoch") -> None:
                super().__init__()
                self.prefix = prefix

            def on_epoch_end(self, epoch, logs=None):
                print(f"{self.prefix} {epoch + 1}: {logs}")


        @kplug.hookimpl
        def kplug_register_callbacks(register):
            register("print-epoch", PrintEpoch)

    Config::

        callbacks:
          - {name: print-epoch, options: {prefix: tiny}}
    """


@hookspec
def kplug_register_metrics(register: Register) -> None:
    """Called once when plugins load, to add metrics a head can report (``model.heads[].metrics``).

    The factory returns a ``keras.metrics.Metric`` (a fresh one on every call: each stage
    compiles anew). It receives the head's probabilities (softmax for classification,
    sigmoid for multi-label, the values for regression) and the head's targets: class ids,
    or rows of 0/1 when registered with ``labels="one_hot"``. A factory that takes a ``head``
    argument receives the ``kplug.Head`` it measures. Every ``keras.metrics`` class is
    registered by kplug under its Keras name (``auc``, ``precision``, ``f1_score``, ...).

    Example::

        import keras
        import kplug


        class NegativeRecall(keras.metrics.Recall):
            '''Recall of class 0 (the negative class), from class probabilities and class ids.'''

            def update_state(self, y_true, y_pred, sample_weight=None):
                negative = keras.ops.equal(keras.ops.reshape(y_true, (-1,)), 0)
                return super().update_state(negative, y_pred[:, 0], sample_weight)


        @kplug.hookimpl
        def kplug_register_metrics(register):
            register("negative-recall", NegativeRecall)

    Config::

        model:
          heads:
            - {name: classification, metrics: [accuracy, auc, negative-recall]}
    """


@hookspec
def kplug_register_loggers(register: Register) -> None:
    """Called once when plugins load, to add experiment loggers (TensorBoard, MLflow, ...).

    A logger factory returns a ``keras.callbacks.Callback``. Unlike a training callback, a
    logger is built **once per run** and passed to every stage's ``Model.fit``, so one log spans
    all stages (the epoch index counts over all stages). Besides its options, the factory may
    take two arguments that kplug supplies: ``run_dir`` (the run directory, a ``pathlib.Path``)
    and ``run_config`` (the ``kplug.RunConfig``). It must not write anything when called — kplug
    builds loggers before it creates the run directory, so a bad option leaves nothing behind —
    and starts writing in ``on_train_begin``. If the logger has a method ``on_run_end(result)``,
    kplug calls it with the ``FitResult`` once the run directory is complete (model,
    ``report.json``), the moment to copy the run directory somewhere. Config entries are a name
    or ``{name, options}``. The built-in ``tensorboard`` logger and the kplug-mlflow plugin
    package are loggers.

    Example::

        import csv
        import keras
        import kplug


        class EpochLines(keras.callbacks.Callback):
            '''Write one CSV line per epoch to <run_dir>/<file>.'''

            def __init__(self, run_dir, file: str = "epochs.csv") -> None:
                super().__init__()
                self.path = run_dir / file

            def on_epoch_end(self, epoch, logs=None):
                with self.path.open("a", newline="") as handle:
                    csv.writer(handle).writerow([epoch + 1, *(logs or {}).values()])

            def on_run_end(self, result):
                print(f"{self.path} is complete; the run is in {result.run_dir}")


        @kplug.hookimpl
        def kplug_register_loggers(register):
            register("epoch-lines", EpochLines)

    Config::

        loggers: [tensorboard, epoch-lines]          # or [{name: epoch-lines, options: {file: e.csv}}]
    """


@hookspec
def kplug_add_commands(commands: argparse._SubParsersAction) -> None:
    """Called once when the ``kplug`` command-line parser is built, to add subcommands.

    kplug-compress adds ``kplug export`` this way. ``commands`` is the parser's argparse
    subparsers object: add a parser with ``commands.add_parser(name, help=...)``, its arguments,
    and ``set_defaults(handler=function)``. The handler receives the parsed
    ``argparse.Namespace`` and returns the exit code. A ``KplugError`` it raises is printed as
    ``kplug: error: ...`` with exit code 2 (the traceback only with ``--debug``), like kplug's own
    commands. A plugin that takes a command name kplug or another plugin already uses loses all
    its commands, with a warning naming the plugin and the command; every other command still
    works.

    Example::

        import kplug


        @kplug.hookimpl
        def kplug_add_commands(commands):
            hello = commands.add_parser("hello", help="greet someone")
            hello.add_argument("name")
            hello.set_defaults(handler=lambda args: print(f"hello {args.name}") or 0)
    """


@hookspec(firstresult=True)
def kplug_launch(config: RunConfig, train: dict[str, Any]) -> int | None:
    """Called by ``kplug train`` before anything is built, to train the run somewhere else.

    Called only in the process the user started: not under ``--nproc``, torchrun or ``srun``
    (``WORLD_SIZE`` set), and not by ``kplug.fit``. It receives the run's validated
    ``kplug.RunConfig`` (``output.dir`` already set from ``--output``; with ``--resume`` and no
    config file, the config saved in that run directory) and ``train``, the keyword arguments of
    ``kplug.Trainer`` that reproduce the command (``config``, ``output``, ``resume``; paths as
    given, relative to the current directory). Return ``None`` to train in this process, or the
    exit code once the plugin has trained the run elsewhere, e.g. in processes on a cluster that
    each run ``kplug.Trainer(**train).fit()`` with torchrun's variables set. The first
    implementation returning a code wins. kplug-ray sends a run with ``distribution: {name: ray}``
    to a Ray cluster this way.

    Example::

        import subprocess
        import kplug


        @kplug.hookimpl
        def kplug_launch(config, train):
            if config.distribution.name == "my-cluster":
                return subprocess.call(["submit-job", "kplug", "train", str(train["config"])])
            return None
    """


# ---------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------


@hookspec
def kplug_configure(config: RunConfig) -> dict[str, Any] | None:
    """Called once per run, after the config is validated and before its components are resolved.

    It receives the validated ``kplug.RunConfig``. Return ``None`` to leave it as it is, or a
    dict of top-level fields to override (``"seed"``, ``"train"``, ``"callbacks"``, ...): each dict
    is merged into the config and the result is validated again, so an override replaces a whole
    top-level section. Implementations run one after the other in load order (built-ins,
    installed plugins, plugins passed in Python), each receiving the config as the previous one
    left it, so they can build on each other and a later one wins on the same field. Returning
    anything else is a ``PluginError``.

    Example::

        import kplug


        @kplug.hookimpl
        def kplug_configure(config):
            # Always stop on NaN losses, in every run.
            names = [callback.name for callback in config.callbacks]
            if "terminate-on-nan" not in names:
                return {"callbacks": [*config.model_dump()["callbacks"], {"name": "terminate-on-nan"}]}
            return None
    """


@hookspec
def kplug_on_fit_start(run: RunContext, model: keras.Model) -> None:
    """Called once per run, when the model is built, before the first stage.

    The model is initialised from a checkpoint first when the config asks for it. The hook runs
    inside the distribution scope and precision policy. The model is not compiled yet: each
    stage compiles it with its own trainable set and learning rate.

    It receives ``run``, the read-only ``kplug.plugin.RunContext`` of the run (``config``,
    ``run_dir``, ``components``, ``data``, ``label_maps``, ``heads``, ``split_data(split)``,
    ``callback(name)``, ``distribution``), and the ``keras.Model``. The return value is ignored.

    Example::

        import kplug


        @kplug.hookimpl
        def kplug_on_fit_start(run, model):
            train_rows = len(run.split_data("train")[0])
            print(f"{run.config.name}: {model.count_params()} parameters on {train_rows} examples")
    """


@hookspec(firstresult=True)
def kplug_training_model(run: RunContext, model: keras.Model) -> keras.Model | None:
    """Return a model to compile and fit in place of the run's model, or ``None``.

    Called once per run, right after ``kplug_on_fit_start`` (also when a run is resumed). The
    returned ``keras.Model`` wraps ``model`` to train it differently: it must hold all of
    ``model``'s variables (plus any of its own, e.g. a learned projection) and compile like a
    kplug model (``compile(optimizer=..., loss=..., metrics=[...])`` with the heads' loss and
    metrics; ``run.compile(other)`` compiles another model that way). kplug then compiles it for
    every stage, fits it, writes it into every checkpoint and restores it on
    ``kplug train --resume``, while ``model`` stays the run's model: the one whose trainable set
    the stages choose, that is evaluated at the end (compiled on its own for that), saved as
    ``model.keras`` and described in ``report.json``. The first plugin returning a model wins
    (``firstresult``); ``run.training_model`` holds it afterwards. kplug-compress uses it to
    train a distillation run: a ``keras.distillation.Distiller`` subclass holding the frozen
    teacher and the student.

    A config with a ``distill:`` section and no plugin implementing this hook is refused.

    Example::

        import keras
        import kplug


        @kplug.hookimpl
        def kplug_training_model(run, model):
            if run.config.distill is not None:
                teacher = keras.saving.load_model(run.config.distill["teacher"])
                return keras.distillation.Distiller(teacher, model, keras.distillation.LogitsDistillation())
    """


@hookspec
def kplug_on_stage_start(run: RunContext, model: keras.Model, stage: int) -> None:
    """Called at the start of every training stage, after its trainable set is applied, before compiling.

    Also called for a stage resumed from a checkpoint. The optimizer is built afterwards from
    whatever ``model.trainable_variables`` holds when the hook returns. ``stage`` is the 0-based
    index into ``run.stages``. Use it to change which variables train in a stage;
    kplug-compress's LoRA keeps the base kernels of adapted layers frozen here. The return value
    is ignored.

    Example::

        import kplug


        @kplug.hookimpl
        def kplug_on_stage_start(run, model, stage):
            epochs = run.stages[stage].epochs
            print(f"stage {stage + 1} ({epochs} epochs): {len(model.trainable_variables)} trainable variables")
    """


@hookspec
def kplug_on_epoch_end(run: RunContext, epoch: int, logs: dict[str, float]) -> None:
    """Called after every epoch of every stage, from a Keras callback at the epoch boundary.

    It never runs inside the train step, and kplug adds that callback to ``fit`` only when some
    plugin implements this hook, so it costs nothing otherwise. It receives ``run`` (the
    ``RunContext``), the epoch index (0-based, counted over all stages: the first epoch of a
    second stage after a 2-epoch stage is ``2``) and the epoch's logs as floats (``loss``, the
    heads' metrics and, with a validation split, their ``val_`` counterparts). The return value
    is ignored.

    Example::

        import kplug


        @kplug.hookimpl
        def kplug_on_epoch_end(run, epoch, logs):
            print(f"epoch {epoch}: loss {logs['loss']:.4f}")
    """


@hookspec
def kplug_on_fit_end(run: RunContext, result: FitResult) -> None:
    """Called once per run, after the last stage, when the run directory is complete.

    ``model.keras``, ``metrics.csv``, ``curves.png`` and ``report.json`` are written. It receives
    ``run`` (the ``RunContext``) and the ``kplug.FitResult`` that ``kplug.fit`` is about to return
    (``model``, ``history``, ``run_dir``, ``metrics``, ``report``). The return value is ignored. A
    good place to upload or register the run's artefacts, or to add a section to
    ``result.report`` and write it again with ``kplug.plugin.write_json``.

    Example::

        import shutil
        import kplug


        @kplug.hookimpl
        def kplug_on_fit_end(run, result):
            shutil.make_archive(str(result.run_dir), "zip", result.run_dir)
    """
