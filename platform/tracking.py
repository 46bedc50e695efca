"""MLflow records of a search, written by the driver only (workers need no access to the store).

One experiment per study; one **parent run** per search (named by its search id) and one **child run**
per Tune trial nested under it, with the trial's flattened config as params, every epoch's metrics at
their step, the trial tags of DESIGN.md and a status saying what happened: FINISHED (also when the
scheduler stopped it early: tag ``early_stopped``), FAILED (with the error), KILLED (interrupted).
A trial maps to one run, found again by its ``trial_id`` tag, so nothing is duplicated across a resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from models.trainable import trial_config

_NOT_METRICS = set(AUTO_RESULT_KEYS) | {"done", "trial_id", "experiment_tag", "should_checkpoint"}
_MAX_TAG = 4000
PARENT_TAG = "mlflow.parentRunId"


def open_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """The study's experiment id, created once by the driver before any trial starts."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = f"{artifact_root}/{name}" if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


def find_search_runs(client: MlflowClient, experiment_id: str) -> list:
    """Parent runs of the experiment, newest first."""
    return client.search_runs([experiment_id], filter_string="tags.search_role = 'parent'",
                              order_by=["attributes.start_time DESC"])


def child_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list:
    return client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
                              max_results=50_000)


def numeric_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The trial's own numeric metrics of a Tune result (Tune's bookkeeping left out)."""
    return {key: float(value) for key, value in result.items()
            if key not in _NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def error_text(trial: Any) -> str:
    """The trial's error as Tune saved it (traceback), else its summary."""
    path = getattr(trial, "error_file", None)
    if path:
        try:
            with open(path) as handle:
                return handle.read()
        except OSError:
            pass
    error = trial.get_error() if hasattr(trial, "get_error") else None
    return str(error) if error else "unknown error"


def error_summary(text: str) -> str:
    """The last line that names an exception, e.g. ``TrialDivergedError: loss became nan ...``."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0] or "Exception" in line.split(":")[0]]
    return (named or lines or ["unknown error"])[-1][:_MAX_TAG]


class TrialRecorder(Callback):
    """Tune callback: one nested MLflow run per trial, opened on its start and closed on its end."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str,
                 trial_tags: Mapping[str, str], epochs_key: str,
                 optuna_trial: Callable[[str], Any] = lambda trial_id: None):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.trial_tags = dict(trial_tags)
        self.epochs_key = epochs_key
        self.optuna_trial = optuna_trial
        self.run_ids: dict[str, str] = {}  # Tune trial id → MLflow run id
        self.names: dict[str, str] = {}  # Tune trial id → run name, e.g. trial-0004
        self.open_runs: set[str] = set()
        known = child_runs(client, experiment_id, parent_run_id)
        self.known_runs = {run.data.tags.get("trial_id"): run.info.run_id for run in known}
        self.names.update({run.data.tags.get("trial_id"): run.info.run_name for run in known})
        self.counter = len(self.known_runs)

    # --- Tune hooks -------------------------------------------------------------------------------
    def name(self, trial_id: str) -> str:
        return self.names.get(trial_id, trial_id)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id) or self.known_runs.get(trial.trial_id)
        if run_id is None:
            run_id = self._create_run(trial)
        else:  # the same trial again (Tune restored it): its one run is open again
            self.client.update_run(run_id, status="RUNNING")
        self.run_ids[trial.trial_id] = run_id
        self.open_runs.add(run_id)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        step = int(result.get("epochs", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in numeric_metrics(result).items()]
        tags = [RunTag(key, str(result[key])) for key in ("node_id", "device") if key in result]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        result = trial.last_result or {}
        planned = trial.config.get(self.epochs_key)
        stopped = planned is not None and result.get("epochs", planned) < planned
        self.client.set_tag(run_id, "early_stopped", str(stopped).lower())
        self._close(run_id, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id) or self._create_run(trial)
        text = error_text(trial)
        self.client.set_tag(run_id, "error", error_summary(text))
        self.client.log_text(run_id, text, "error.txt")
        self._close(run_id, "FAILED")

    # --- resume support (Lightning's callback state idea) ---------------------------------------
    def get_state(self) -> dict:
        return {"run_ids": dict(self.run_ids)}

    def set_state(self, state: dict) -> None:
        self.run_ids.update(state.get("run_ids", {}))

    def close_open_runs(self, status: str = "KILLED") -> int:
        """Close every run still open (on an interrupt); returns how many."""
        closed = 0
        for run_id in list(self.open_runs):
            self.client.set_tag(run_id, "interrupted", "true")
            self._close(run_id, status)
            closed += 1
        return closed

    # --- helpers ------------------------------------------------------------------------------
    def _create_run(self, trial: Any) -> str:
        self.counter += 1
        optuna_trial = self.optuna_trial(trial.trial_id)
        config = trial_config(trial.config)
        self.names[trial.trial_id] = f"trial-{self.counter:04d}"
        tags = {
            PARENT_TAG: self.parent_run_id,
            "mlflow.runName": self.names[trial.trial_id],
            **self.trial_tags,
            "trial_id": trial.trial_id,
            "early_stopped": "false",
        }
        if optuna_trial is not None:  # which keys the searcher chose (the rest were fixed or defaults)
            tags["optuna_trial_number"] = str(optuna_trial.number)
            tags["searched_keys"] = ",".join(sorted(optuna_trial.params))
        if "_row" in trial.config:
            tags["grid_row"] = str(trial.config["_row"])
        run = self.client.create_run(self.experiment_id, tags=tags)
        params = [Param(key, str(value)) for key, value in sorted(config.items())]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return run.info.run_id

    def _close(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status=status)
        self.open_runs.discard(run_id)
