"""Starter run configs written by ``kplug init``: one per task, every field explained.

Each template is valid as written and trains as written from any directory: ``write_starter``
copies the sample data its task needs (package data in ``kplug/cli/starter_data``) into
``data/<folder>`` next to the config, and relative paths in a config file are read relative to
the file (``kplug.config.paths``). ``tests/cli/test_starter.py`` trains each one.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from kplug.errors import ConfigError

_HELP = "# Each line explains its field; `kplug plugins` lists the components and their options.\n"

_TRAIN = """\
train:                             # how the model is trained
  optimizer:                       # any keras.optimizers name: adam, adamw, sgd, lion, ...; own settings in options
    name: adamw                    # decoupled weight decay, a good default for fine-tuning
    learning_rate: 1.0e-3          # the rate of every stage unless its optimizer sets its own
    weight_decay: 1.0e-4           # decoupled weight decay (adamw)
  schedule:                        # learning-rate schedule within each stage
    name: cosine                   # constant, cosine or linear, over each stage
    warmup_steps: 0                # optimizer steps of linear warm-up at the start of a stage
  label_smoothing: 0.0             # classification only: soften the one-hot targets
  batch_size: 32                   # used by stages that do not set their own
  verbose: auto                    # Keras progress display: auto, 0, 1 or 2
  stages:                          # each stage is one Model.fit call
{stages}
"""

_COMMON_TAIL = """\
augment: []                        # augmentation layers in front of the backbone, training only: [{{name, options}}]
precision: {{policy: float32}}       # a registered precision policy (kplug-precision adds mixed ones)
distribution: {{name: auto}}         # device placement (kplug-distribute adds data/model parallel)
callbacks: []                      # Keras callbacks per stage, e.g. [{{name: early-stopping, options: {{patience: 3}}}}]
loggers: []                        # experiment logs over the whole run: [tensorboard] (kplug[tensorboard]), [mlflow] (kplug-mlflow)
distill: null                      # or {{teacher: runs/big-model, temperature: 3.0, alpha: 0.5}}: knowledge distillation (kplug-compress)
output:                            # where the run goes
  dir: null                        # the run directory; null: runs/<name> in the working directory
  overwrite: false                 # true replaces an existing run directory
  checkpoint_every: 1              # checkpoint every N epochs (0: stage ends only); kplug train --resume uses them
# tune:                            # kplug tune run.yaml --trials 20 searches these fields (needs kplug[tune])
#   metric: {metric}
#   direction: {direction}
#   space:
#     train.optimizer.learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
#     train.batch_size: {{type: categorical, choices: [16, 32, 64]}}
"""

_IMAGE = """\
# kplug run config: image classification. Train it with:  kplug train {file}
{help}# Relative paths are read relative to this file's folder.
name: {name}  # names the run directory (runs/<name>) and the MLflow experiment
seed: 0                            # seeds splits, weights and shuffling: same seed, same run
data:                              # where the examples come from and how they are split
  source: idx                      # a registered data source (kplug plugins lists them)
  options:                         # the source's own options; here IDX image and label files
    images: data/mnist/images-idx3-ubyte.gz   # 500 MNIST digits written by kplug init
    labels: data/mnist/labels-idx1-ubyte.gz   # replace both with your own IDX files
  where: {{}}                        # keep only some labels, e.g. {{label: [0, 1, 2]}}
  limit: null                      # at most N examples (seeded choice), null for all
  split: {{validation: 0.1, test: 0.1, stratify: true}}   # fractions held out, class balance kept
model:                             # a backbone with one or more heads on top
  backbone:                        # the shared trunk
    name: small-cnn                # the shared trunk; kplug-vision adds keras-hub / applications families
    options: {{filters: [16, 32], dense_units: 64}}   # the backbone's own options (see its docs)
    init: null                     # or {{from: runs/pretrained, map: {{"backbone/(.*)": "backbone/\\\\1"}}}} to transfer weights
  heads:                           # one or more task heads on the backbone
    - name: classification         # softmax classifier; num_classes comes from the data
      id: digits                   # output name (letters, digits, _); defaults to the head name
      target: label                # which target of the data this head learns
      options: {{dropout: 0.0}}      # the head's own options: dropout before the output layer
"""

_TEXT = """\
# kplug run config: text classification. Train it with:  kplug train {file}
# Needs the kplug-text plugin, which brings the pretrained all-MiniLM-L6-v2 encoder (no download).
{help}# Relative paths are read relative to this file's folder.
name: {name}  # names the run directory (runs/<name>) and the MLflow experiment
seed: 0                            # seeds splits, weights and shuffling: same seed, same run
data:                              # where the examples come from and how they are split
  source: tsv                      # a registered data source (kplug plugins lists them)
  options:                         # the source's own options: a text column and a label column
    path: data/sst2/train.tsv      # 400 SST-2 phrases written by kplug init; a header row, one example per line
    features: [sentence]           # the text column
    label: label                   # the label column (names or numbers)
    text: true                     # the feature is text, not numbers
  where: {{}}                        # keep only some labels, e.g. {{label: [0, 1]}}
  limit: null                      # at most N examples (seeded choice), null for all
  split: {{validation: 0.1, test: 0.1, stratify: true}}   # fractions held out, class balance kept
model:                             # a backbone with one or more heads on top
  backbone:                        # the shared trunk
    name: minilm-l6                # kplug-text: minilm-l6, bert, distilbert (each names its tokenizer)
    options:                       # the backbone's own options (kplug-text README)
      pooling: mean                # sentence embedding: the mean over real tokens
      # path: CHECKPOINT_FOLDER    # bert and distilbert need a local checkpoint folder (no download)
    init: null                     # or {{from: RUN_DIR}} to start from an earlier kplug run
  preprocessor:                    # text to token ids; leave out for the backbone's default tokenizer
    name: minilm-l6-tokenizer      # kplug-text: minilm-l6-tokenizer, bert-tokenizer, distilbert-tokenizer
    options: {{sequence_length: 40}}    # tokens per example (truncated or padded); path: the backbone's
  heads:                           # one or more task heads on the backbone
    - name: classification         # softmax classifier; num_classes comes from the data
      id: sentiment                # output name (letters, digits, _); defaults to the head name
      target: label                # which target of the data this head learns
      options: {{dropout: 0.1}}      # the head's own options: dropout before the output layer
"""

_REGRESSION = """\
# kplug run config: regression on a table of numbers. Train it with:  kplug train {file}
{help}# Relative paths are read relative to this file's folder.
name: {name}  # names the run directory (runs/<name>) and the MLflow experiment
seed: 0                            # seeds splits, weights and shuffling: same seed, same run
data:                              # where the examples come from and how they are split
  source: csv                      # a registered data source (kplug plugins lists them)
  options:                         # the source's own options
    path: data/diabetes/train.csv  # 442 patients (diabetes data) written by kplug init; a header row, numeric columns
    label: progression             # the column to predict; every other column is a feature
  where: {{}}                        # keep only rows whose target has one of these values
  limit: null                      # at most N examples (seeded choice), null for all
  split: {{validation: 0.1, test: 0.1, stratify: false}}  # fractions held out (no classes to balance)
model:                             # a backbone with one or more heads on top
  backbone:                        # the shared trunk
    name: mlp                      # a multilayer perceptron over the feature columns
    options: {{units: [64, 32], dropout: 0.0}}   # hidden layer widths and dropout
    init: null                     # or {{from: RUN_DIR}} to start from an earlier kplug run
  heads:                           # one or more task heads on the backbone
    - name: regression             # linear outputs, mean squared error
      id: value                    # output name (letters, digits, _); defaults to the head name
      target: label                # which target of the data this head learns (the label column)
      options: {{num_outputs: 1}}    # values predicted per example
"""

_IMAGE_STAGES = """\
    - {epochs: 2, trainable: ["heads/*"]}              # warm up the new head on a frozen backbone
    - {epochs: 3, trainable: all, optimizer: {learning_rate: 3.0e-4}}  # then fine-tune everything, more gently"""
_TEXT_STAGES = """\
    - {epochs: 1, trainable: ["heads/*"], optimizer: {learning_rate: 1.0e-3}}  # train the new head first
    - {epochs: 2, trainable: all, optimizer: {learning_rate: 2.0e-5}}         # then fine-tune the encoder"""
_REGRESSION_STAGES = """\
    - {epochs: 20, trainable: all}  # one stage: train everything"""

TASKS: dict[str, tuple[str, str, str, str]] = {
    # task: (template, stages, metric to tune, direction)
    "image-classification": (_IMAGE, _IMAGE_STAGES, "val_accuracy", "maximize"),
    "text-classification": (_TEXT, _TEXT_STAGES, "val_accuracy", "maximize"),
    "regression": (_REGRESSION, _REGRESSION_STAGES, "val_loss", "minimize"),
}

# task: the folder of kplug/cli/starter_data its config reads, copied to data/<folder> next to it
SAMPLE_DATA: dict[str, str] = {
    "image-classification": "mnist",
    "text-classification": "sst2",
    "regression": "diabetes",
}


def starter_config(task: str, name: str = "my-run", file: str = "run.yaml") -> str:
    """The commented YAML starter config for ``task``.

    Raises:
        ConfigError: ``task`` is not one of ``TASKS``.
    """
    if task not in TASKS:
        raise ConfigError(f"--task {task!r}: choose one of {', '.join(TASKS)}.")
    template, stages, metric, direction = TASKS[task]
    head = template.format(name=name, file=file, help=_HELP)
    tail = _COMMON_TAIL.format(name=name, metric=metric, direction=direction)
    return head + _TRAIN.format(stages=stages) + tail


def sample_data(task: str) -> resources.abc.Traversable:
    """The packaged sample data folder the starter of ``task`` reads."""
    return resources.files("kplug.cli").joinpath("starter_data", SAMPLE_DATA[task])


def write_starter(task: str, path: str | Path, force: bool = False) -> Path:
    """Write the starter config for ``task`` to ``path`` and its sample data to ``data/`` next to it.

    Returns the sample data folder written. Refuses to overwrite the config, or a data file that
    differs from the packaged one, unless ``force``; identical data files are left as they are.
    """
    path = Path(path)
    if task not in TASKS:
        raise ConfigError(f"--task {task!r}: choose one of {', '.join(TASKS)}.")
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; choose another file or pass --force to replace it.")
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"{path}: kplug init writes YAML; name the file .yaml or .yml.")
    if not path.resolve().parent.is_dir():
        raise ConfigError(f"{path}: the directory {path.parent} does not exist.")
    name = path.stem if path.stem and path.stem[0].isalnum() else "my-run"
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
    source = sample_data(task)
    target = path.parent / "data" / SAMPLE_DATA[task]
    files = [(item, target / item.name) for item in source.iterdir() if item.is_file()]
    for item, destination in files:
        if destination.exists() and not force and destination.read_bytes() != item.read_bytes():
            raise ConfigError(
                f"{destination} exists and differs from kplug's sample data; "
                f"move it, or pass --force to replace it."
            )
    path.write_text(starter_config(task, name=name, file=str(path)), encoding="utf-8")
    target.mkdir(parents=True, exist_ok=True)
    for item, destination in files:
        with item.open("rb") as reader, open(destination, "wb") as writer:
            shutil.copyfileobj(reader, writer)
    return target
