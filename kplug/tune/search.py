"""Hyperparameter search with Optuna: ``kplug tune CONFIG --trials N``.

The run config's ``tune`` section (``kplug.tune.space.TuneConfig``) names the fields to
vary. Every trial is a normal kplug run in ``<output>/trial-NNN`` (its ``config.yaml``
trains again with ``kplug train``). Each epoch's value of ``tune.metric`` is reported to
the trial from the ``kplug_on_epoch_end`` hook, which kplug calls from a Keras callback
at the epoch boundary; the pruner stops trials that fall behind. The study lives in
``<output>/study.db`` (SQLite), so running the same command again continues it. At the
end ``summary.csv`` lists every trial and ``best.yaml`` is the best trial's config.

Optuna is an optional dependency: ``pip install 'kplug[tune]'``.

Example::

    from kplug.tune.search import tune
    result = tune("run.yaml", trials=20)
    print(result.best_value, result.best_params, result.best_config_path)
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kplug.config.load import load_config, parse_config
from kplug.config.schema import RunConfig
from kplug.errors import ConfigError, KplugError
from kplug.plugin.manager import Plugins, get_plugins, hookimpl
from kplug.tune.space import Choice, FloatRange, IntRange, TuneConfig, apply_params

STUDY_FILE = "study.db"
SUMMARY_FILE = "summary.csv"
BEST_FILE = "best.yaml"
LOCK_FILE = ".tune.lock"
_PRIMITIVE = (str, int, float, bool, type(None))


@dataclass
class TuneResult:
    """What ``tune`` returns.

    Attributes:
        output: the search folder (study database, trial run directories, summary).
        rows: one summary row per trial (number, state, metric value, params, run_dir, ...).
        metric: the optimised metric (``tune.metric``).
        best_value: the best finished trial's value of ``tune.metric`` (None if none finished).
        best_params: its searched values, by config path.
        best_run_dir: its run directory.
        best_config_path: ``best.yaml``, the base config with the best values.
    """

    output: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    metric: str = ""
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_run_dir: Path | None = None
    best_config_path: Path | None = None


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise KplugError(
            "kplug tune needs Optuna, which is not installed: pip install 'kplug[tune]'."
        ) from None
    return optuna


class _TrialReporter:
    """A plugin object that reports each epoch's metric to the Optuna trial and prunes.

    ``kplug_on_epoch_end`` runs from a Keras callback at every epoch boundary (the epoch
    counted over all stages), so Optuna sees one intermediate value per epoch.
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric
        self.last: float | None = None

    @hookimpl
    def kplug_on_epoch_end(self, run: Any, epoch: int, logs: dict[str, float]) -> None:
        if self.metric not in logs:
            raise ConfigError(
                f"tune.metric = {self.metric!r}: this run logs {', '.join(sorted(logs))}"
                + (
                    ""
                    if any(k.startswith("val_") for k in logs)
                    else " (val_* needs data.split.validation > 0)"
                )
                + "."
            )
        self.last = logs[self.metric]
        self.trial.report(self.last, step=epoch)
        if self.trial.should_prune():
            optuna = _optuna()
            raise optuna.TrialPruned(f"{self.metric} = {self.last:.6g} at epoch {epoch + 1}")


def _check_metric(config: RunConfig, metric: str, plugins: Plugins) -> None:
    """Refuse a ``tune.metric`` the run will not log, and bad data, before any trial starts.

    Raises:
        ConfigError: naming the metric and the names the run logs.
    """
    from kplug.data.inputs import prepare_data
    from kplug.model.assembly import build_head, logged_metric_names
    from kplug.plugin.resolve import resolve

    run = resolve(config, plugins)
    data = prepare_data(run)
    heads = {
        head.config.output_name: build_head(head, data.label_maps[head.config.target], index)
        for index, head in enumerate(run.heads)
    }
    validation = len(data.splits.validation) > 0
    logged = logged_metric_names(heads, validation=validation)
    if metric not in logged:
        hint = "" if validation else " (val_* needs data.split.validation > 0)"
        raise ConfigError(f"tune.metric = {metric!r}: this run logs {', '.join(sorted(logged))}{hint}.")


def _suggest(trial: Any, path: str, parameter: FloatRange | IntRange | Choice) -> Any:
    if isinstance(parameter, FloatRange):
        return trial.suggest_float(
            path, parameter.low, parameter.high, log=parameter.log, step=parameter.step
        )
    if isinstance(parameter, IntRange):
        return trial.suggest_int(path, parameter.low, parameter.high, log=parameter.log, step=parameter.step)
    if all(isinstance(choice, _PRIMITIVE) for choice in parameter.choices):
        return trial.suggest_categorical(path, parameter.choices)
    # Optuna stores only primitive choices: lists and mappings are chosen by their JSON text
    texts = [json.dumps(choice, sort_keys=True) for choice in parameter.choices]
    return json.loads(trial.suggest_categorical(path, texts))


def _decode(tune_config: TuneConfig, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's stored params back to config values (JSON-text choices decoded)."""
    values = {}
    for path, value in params.items():
        parameter = tune_config.space.get(path)
        if isinstance(parameter, Choice) and isinstance(value, str) and value not in parameter.choices:
            value = json.loads(value)
        values[path] = value
    return values


def _first_values(tune_config: TuneConfig) -> dict[str, Any]:
    """One value per parameter (its low end or first choice), to check the paths before any trial."""
    values = {}
    for path, parameter in tune_config.space.items():
        values[path] = parameter.choices[0] if isinstance(parameter, Choice) else parameter.low
    return values


def trial_config(base: RunConfig, params: dict[str, Any], run_dir: Path | None) -> RunConfig:
    """The base config with the searched values set, no ``tune`` section, written to ``run_dir``.

    Raises:
        ConfigError: a path does not exist in the config, or a value is not allowed there.
    """
    data = base.model_dump(by_alias=True, exclude={"tune"})
    data = apply_params(data, params)
    data["output"] = {**data["output"], "dir": str(run_dir) if run_dir else None, "overwrite": True}
    try:
        return parse_config(data)
    except ConfigError as error:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError(f"tune.space: the config with {shown} is invalid. {error}") from None


def _pruner(optuna: Any, tune_config: TuneConfig) -> Any:
    pruner = tune_config.pruner
    if pruner.name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_epochs
        )
    if pruner.name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=max(1, pruner.warmup_epochs))
    return optuna.pruners.NopPruner()


def _sampler(optuna: Any, tune_config: TuneConfig, seed: int) -> Any:
    if tune_config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


@contextlib.contextmanager
def _lock(output: Path) -> Iterator[None]:
    """One ``kplug tune`` per search folder: its unfinished trials are then known to be stale."""
    path = output / LOCK_FILE
    try:
        other = int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        other = 0
    if other and other != os.getpid() and _alive(other):
        raise ConfigError(f"{output}: another kplug tune (process {other}) is using this folder.")
    path.write_text(str(os.getpid()))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _open_study(optuna: Any, base: RunConfig, output: Path) -> Any:
    tune_config = base.tune
    space = json.dumps(tune_config.model_dump(mode="json"), sort_keys=True)
    storage = f"sqlite:///{(output / STUDY_FILE).resolve()}"
    existing = optuna.study.get_all_study_names(storage) if (output / STUDY_FILE).exists() else []
    if existing and base.name not in existing:
        raise ConfigError(
            f"{output} holds the search of {', '.join(existing)}, not of {base.name!r}: use another --output."
        )
    previous = 0
    if existing:
        summaries = optuna.study.get_all_study_summaries(storage)
        previous = sum(s.n_trials for s in summaries if s.study_name == base.name)
    study = optuna.create_study(
        study_name=base.name,
        storage=storage,
        load_if_exists=True,
        direction=tune_config.direction,
        # a resumed search continues the sampler's sequence instead of repeating it
        sampler=_sampler(optuna, tune_config, base.seed + previous),
        pruner=_pruner(optuna, tune_config),
    )
    recorded = study.user_attrs.get("tune")
    if recorded is None:
        study.set_user_attr("tune", space)
    elif recorded != space:
        raise ConfigError(
            f"{output} holds a search with a different tune section; continue it with the same config "
            f"or start a new search with another --output."
        )
    return study


def _requeue_unfinished(optuna: Any, study: Any) -> int:
    """Queue the values of trials that did not finish (interrupted or failed) to run once more.

    A trial still marked running was left by a search that was killed (the lock file says no
    other search is running), so it is marked failed first.
    """
    state = optuna.trial.TrialState
    for trial in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        study.tell(trial.number, state=state.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    failed = [t for t in trials if t.state == state.FAIL and t.number not in retried]
    for trial in failed:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    return len(failed)


def _finished(optuna: Any, study: Any) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _summary_rows(optuna: Any, study: Any, tune_config: TuneConfig) -> list[dict[str, Any]]:
    rows = []
    for trial in study.get_trials(deepcopy=False):
        value = trial.value
        if value is None and trial.intermediate_values:
            value = trial.intermediate_values[max(trial.intermediate_values)]
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                tune_config.metric: value,
                "epochs": len(trial.intermediate_values),
                **_decode(tune_config, trial.params),
                "seconds": round(seconds, 1) if seconds is not None else None,
                "run_dir": trial.user_attrs.get("run_dir", ""),
            }
        )
    return rows


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(
            {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows
        )


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The summary rows as an aligned text table (floats with 4 significant digits)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return "" if value is None else str(value)

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns and key != "run_dir"]
    table = [columns, *[[cell(row.get(c)) for c in columns] for row in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)).rstrip() for line in table
    )


def tune(
    config: str | Path | dict[str, Any] | RunConfig,
    trials: int,
    output: str | Path | None = None,
    plugins: Plugins | list[Any] | None = None,
) -> TuneResult:
    """Search the config's ``tune.space`` with Optuna until the study has ``trials`` finished trials.

    Finished means completed or pruned. Running it again on the same ``output`` continues
    the study: trials an interrupted search left unfinished are run again with the same
    values, and a larger ``trials`` adds more.

    Args:
        config: a run config (file path, dict or ``RunConfig``) with a ``tune`` section.
        trials: how many finished trials the study should have.
        output: the search folder; defaults to ``runs/<name>-tune``.
        plugins: extra plugin objects, or a ``Plugins`` from ``kplug.load_plugins``.

    Returns:
        A ``TuneResult``: the summary rows and the best trial.

    Raises:
        ConfigError: no ``tune`` section, a path that is not in the config, a metric the run
            does not log, or a search folder that belongs to another search.
    """
    base = load_config(config)
    if base.tune is None:
        raise ConfigError(
            "The config has no tune section: add tune.space (config path -> range or choices) to search it. "
            "Example: tune: {metric: val_accuracy, direction: maximize, space: "
            "{train.optimizer.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}}}."
        )
    if trials < 1:
        raise ConfigError(f"--trials {trials}: give a positive number of trials.")
    tune_config = base.tune
    first = trial_config(base, _first_values(tune_config), None)  # every path exists before any trial runs
    optuna = _optuna()
    loaded = get_plugins(plugins)
    _check_metric(first, tune_config.metric, loaded)  # before the search folder exists
    folder = Path(output) if output is not None else Path("runs") / f"{base.name}-tune"
    folder.mkdir(parents=True, exist_ok=True)

    def objective(trial: Any) -> float:
        params = {path: _suggest(trial, path, parameter) for path, parameter in tune_config.space.items()}
        run_dir = folder / f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", str(run_dir))
        reporter = _TrialReporter(trial, tune_config.metric)
        loaded.manager.register(reporter)
        try:
            from kplug.train.trainer import Trainer

            result = Trainer(trial_config(base, params, run_dir), plugins=loaded).fit()
        finally:
            loaded.manager.unregister(reporter)
        value = result.history[tune_config.metric][-1]
        if not math.isfinite(value):
            raise KplugError(f"trial {trial.number}: {tune_config.metric} is {value}")
        return value

    with _lock(folder):
        study = _open_study(optuna, base, folder)
        _requeue_unfinished(optuna, study)
        remaining = trials - _finished(optuna, study)
        if remaining > 0:
            study.optimize(objective, n_trials=remaining, catch=())
        rows = _summary_rows(optuna, study, tune_config)
        _write_summary(folder / SUMMARY_FILE, rows)
        result = TuneResult(folder, rows, tune_config.metric)
        completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if completed:
            best = study.best_trial
            result.best_value = best.value
            result.best_params = _decode(tune_config, best.params)
            result.best_run_dir = Path(best.user_attrs["run_dir"])
            best_config = trial_config(base, result.best_params, None).to_dict()
            best_config["output"].pop("overwrite", None)
            best_config.pop("tune", None)
            header = (
                f"# best of {len(rows)} trials of {base.name}: {tune_config.metric} = {best.value:.6g} "
                f"(trial {best.number}, {result.best_run_dir})\n"
            )
            result.best_config_path = folder / BEST_FILE
            result.best_config_path.write_text(header + yaml.safe_dump(best_config, sort_keys=False))
    return result
