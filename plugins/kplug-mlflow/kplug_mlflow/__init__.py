"""kplug-mlflow: an MLflow logger for kplug runs.

``loggers: [mlflow]`` in a run config records, in one MLflow run per kplug run:

- the resolved config as params (``train.optimizer.learning_rate``, ``train.stages.0.epochs``, ...),
- every epoch metric (and the learning rate) with the epoch over all stages as its step,
- the final metrics of the test (or validation) split, prefixed with the split name,
- the run directory as artifacts once it is complete (checkpoints only with ``log_checkpoints``).

By default the store is local, inside the run directory, so it works offline:
``<run_dir>/mlruns/mlflow.db`` (SQLite, MLflow's maintained local backend) and artifacts
under ``<run_dir>/mlruns/artifacts``. ``tracking_uri`` points it elsewhere (a server, a
shared database).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import keras
import kplug
from kplug import RunConfig

STORE_DIR = "mlruns"
DATABASE = "mlflow.db"
RUN_DIR_TAG = "kplug.run_dir"
_KEY_CHARACTERS = re.compile(r"[^\w\-. /]")


def local_tracking_uri(run_dir: Path) -> str:
    """The tracking URI of the run directory's own store: ``sqlite:///<run_dir>/mlruns/mlflow.db``."""
    return f"sqlite:///{(Path(run_dir) / STORE_DIR / DATABASE).resolve()}"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as ``{"train.optimizer.learning_rate": 0.001, ...}`` (list items as ``.0.``)."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _key(name: str) -> str:
    # MLflow keys allow letters, digits, _ - . space and /
    return _KEY_CHARACTERS.sub("_", name)


class MLflowLogger(keras.callbacks.Callback):
    """Log a kplug run to MLflow.

    Args:
        run_dir: the run directory (supplied by kplug).
        run_config: the resolved run config (supplied by kplug).
        tracking_uri: where to log; default: a SQLite store in ``<run_dir>/mlruns``.
        experiment: MLflow experiment name; default: the run's ``name``.
        log_artifacts: copy the finished run directory into the run's artifacts.
        log_checkpoints: include ``checkpoints/`` in the artifacts (large; off by default).
    """

    def __init__(
        self,
        run_dir: Path,
        run_config: RunConfig,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        log_artifacts: bool = True,
        log_checkpoints: bool = False,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.run_config = run_config
        self.tracking_uri = tracking_uri
        self.experiment = experiment or run_config.name
        self.log_artifacts = log_artifacts
        self.log_checkpoints = log_checkpoints
        self.client: Any = None
        self.run_id: str | None = None

    # -- the MLflow run -------------------------------------------------------

    def _start(self) -> None:
        """Open the store and start (or, after ``--resume``, continue) this run directory's MLflow run."""
        from mlflow.tracking import MlflowClient

        local = self.tracking_uri is None
        if local:
            (self.run_dir / STORE_DIR).mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.tracking_uri or local_tracking_uri(self.run_dir))
        experiment = self.client.get_experiment_by_name(self.experiment)
        if experiment is None:
            artifacts = (self.run_dir / STORE_DIR / "artifacts").resolve().as_uri() if local else None
            experiment_id = self.client.create_experiment(self.experiment, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        path = str(self.run_dir.resolve())
        earlier = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{path}'", max_results=1
        )
        if earlier:  # a resumed kplug run continues its MLflow run
            self.run_id = earlier[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {RUN_DIR_TAG: path, "kplug.backend": keras.backend.backend()}
        run = self.client.create_run(experiment_id, run_name=self.run_config.name, tags=tags)
        self.run_id = run.info.run_id
        self._log_params()

    def _log_params(self) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        flat = flatten(self.run_config.to_dict())
        params = [Param(_key(key), str(value)[:MAX_PARAM_VAL_LENGTH]) for key, value in flat.items()]
        for start in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.run_id, params=params[start : start + MAX_PARAMS_TAGS_PER_BATCH])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(_key(name), float(value), stamp, step) for name, value in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    # -- Keras callback -------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.run_id is None:  # once per run: every stage logs into the same MLflow run
            self._start()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {name: float(value) for name, value in (logs or {}).items()}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in values:
            values["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        self._log_metrics(values, step=epoch)

    # -- kplug: the run directory is complete ----------------------------------

    def on_run_end(self, result: kplug.FitResult) -> None:
        """Log the final metrics and the run directory, then mark the MLflow run finished."""
        if self.run_id is None:  # nothing was trained (e.g. a resume with no epochs left)
            self._start()
        final = {k: v for k, v in result.metrics.items() if k != "split"}
        if final:
            epochs = len(next(iter(result.history.values()), []))
            self._log_metrics({f"{result.metrics['split']}_{k}": v for k, v in final.items()}, step=epochs)
        if self.log_artifacts:
            for entry in sorted(self.run_dir.iterdir()):
                if entry.name == STORE_DIR or (entry.name == "checkpoints" and not self.log_checkpoints):
                    continue
                if entry.is_dir():
                    self.client.log_artifacts(self.run_id, str(entry), artifact_path=entry.name)
                else:
                    self.client.log_artifact(self.run_id, str(entry))
        self.client.set_terminated(self.run_id, "FINISHED")


@kplug.hookimpl
def kplug_register_loggers(register) -> None:
    """Register the ``mlflow`` logger."""
    register("mlflow", MLflowLogger)


__all__ = ["MLflowLogger", "flatten", "local_tracking_uri"]
