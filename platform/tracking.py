"""MLflow records of a search, written by the driver only (workers need no access to the store).

One experiment per study; one **parent run** per search (named by its search id) and one **child run**
per Tune trial nested under it, with the trial's flattened config as params, every epoch's metrics at
their step and the trial tags of DESIGN.md. Why the trial ended is the tag ``stop_reason``
(trials.contract): ``completed``, ``own_rule`` and ``scheduler`` are FINISHED runs (``early_stopped`` is
true for ``scheduler`` only), ``failed`` is FAILED (with the error), ``interrupted`` and
``time_budget`` (never started) are KILLED, and run again on ``--resume``.
A trial maps to one run, found again by its ``trial_id`` tag, so nothing is duplicated across a resume.
A trial Tune retries (``--max-failures``: it failed, or its node died) stays that one run: tag ``retries``
counts its restarts, ``node_id`` is the node it ran on last and ``node_ids`` every node it ran on, and an
epoch it reports again after restoring an older checkpoint is not logged twice.
A trial's results are written at most once a second per run (one ``log_batch`` for all results since
the last write) and always before its run closes: one write per result caps the driver near 35-60
results/s (benchmarks/bench_driver_throughput.py), too few for trials with sub-second epochs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from trials.contract import FAILED, INTERRUPTED, SCHEDULER, TIME_BUDGET, stop_reason
from trials.trainable import ARTIFACT_NAMES, ARTIFACTS_DIR, trial_config

_NOT_METRICS = set(AUTO_RESULT_KEYS) | {"done", "trial_id", "experiment_tag", "should_checkpoint"}
_MAX_TAG = 4000
_MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit
FLUSH_INTERVAL_S = 1.0  # a run's results wait at most this long (plus one Tune step) before they are written
PARENT_TAG = "mlflow.parentRunId"


def checkpoint_uri(checkpoint: Any) -> str:
    """Where a Tune checkpoint is: a local path, or ``s3://bucket/...`` (any non-local pyarrow filesystem)."""
    kind = getattr(getattr(checkpoint, "filesystem", None), "type_name", "local")
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


# MLflow's own marker of a model-training experiment (its UI then treats the runs as training runs,
# not GenAI traces), and the experiment's description as the UI shows it.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"


def open_experiment(client: MlflowClient, name: str, artifact_root: str | None, description: str = "") -> str:
    """The study's experiment id, created once by the driver before any trial starts, marked as a
    model-training experiment with the study's description (an experiment made before the mark gets it)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = f"{artifact_root}/{name}" if artifact_root else None
        try:
            return client.create_experiment(name, artifact_location=location,
                                            tags=experiment_tags(description))
        except MlflowException:  # another search of the study created it since we looked
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    for key, value in experiment_tags(description).items():
        if key not in experiment.tags:  # a description the user edited in the UI stays theirs
            client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def experiment_tags(description: str) -> dict[str, str]:
    tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    if description:
        tags[DESCRIPTION_TAG] = description
    return tags


def runs_page(tracking_uri: str, experiment_id: str) -> str:
    """The address of the experiment's runs in the MLflow UI (it opens on its GenAI view otherwise):
    the server's own for a tracking server, ``mlflow ui``'s default one for a local store."""
    base = tracking_uri if tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs"


def dataset_input(tags: Mapping[str, str]) -> DatasetInput | None:
    """The data a run trained on as an MLflow dataset input (the runs table's Dataset column): its name
    and digest from the study's data tags (``dataset``, ``dataset_hash``)."""
    name = tags.get("dataset")
    if not name:
        return None
    source = name.removeprefix("files:") if name.startswith("files:") else f"generated:{name}"
    digest = tags.get("dataset_hash", "")[:36] or "unknown"
    dataset = Dataset(name=name[:500], digest=digest, source_type="local" if name.startswith("files:")
                      else "code", source=json.dumps({"uri": source}), schema=None, profile=None)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])


def log_dataset(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    dataset = dataset_input(tags)
    if dataset is not None:
        client.log_inputs(run_id, datasets=[dataset])


def find_search_runs(client: MlflowClient, experiment_id: str) -> list:
    """Parent runs of the experiment, newest first."""
    return client.search_runs([experiment_id], filter_string="tags.search_role = 'parent'",
                              order_by=["attributes.start_time DESC"])


def child_runs(client: MlflowClient, experiment_id: str, parent_id: str) -> list:
    return client.search_runs([experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'",
                              max_results=50_000)


def numeric_metrics(result: Mapping[str, Any], keep_nan: bool = False) -> dict[str, float]:
    """The trial's own numeric metrics of a Tune result (Tune's bookkeeping left out). ``keep_nan``: a
    NaN stays, for the record, where it overwrites a value that no longer holds (a boundary_error whose
    boundary is gone: MLflow shows each metric's latest value)."""
    return {key: float(value) for key, value in result.items()
            if key not in _NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool)
            and (math.isfinite(value) or (keep_nan and math.isnan(value)))}


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


@dataclass
class _Pending:
    """A run's results since its last write."""

    metrics: list[Metric] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


class TrialRecorder(Callback):
    """Tune callback: one nested MLflow run per trial, opened on its start and closed on its end."""

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str,
                 trial_tags: Mapping[str, str],
                 optuna_trial: Callable[[str], Any] = lambda trial_id: None):
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.trial_tags = dict(trial_tags)
        self.optuna_trial = optuna_trial
        self.run_ids: dict[str, str] = {}  # Tune trial id → MLflow run id
        self.names: dict[str, str] = {}  # Tune trial id → run name, e.g. trial-0004
        self.open_runs: set[str] = set()
        self.retries: dict[str, int] = {}  # Tune trial id → restarts after a failure
        self.last_epoch: dict[str, int] = {}  # Tune trial id → last epoch logged
        self.node_ids: dict[str, list[str]] = {}  # Tune trial id → nodes it ran on, in order
        self.pending: dict[str, _Pending] = {}  # MLflow run id → results not written yet
        self.last_write: dict[str, float] = {}  # MLflow run id → when its results were last written
        self.artifacts_coming: set[str] = set()  # Tune trial ids whose next checkpoint holds artifacts
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
        if run_id is None or not self._new_epoch(trial.trial_id, run_id, result):
            return
        step = int(result.get("epochs", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        pending = self.pending.setdefault(run_id, _Pending())
        metrics = numeric_metrics(result, keep_nan=True)
        pending.metrics += [Metric(key, value, now, step) for key, value in metrics.items()]
        pending.tags.update({key: str(result[key]) for key in ("node_id", "device") if key in result})
        if result.get(ARTIFACT_NAMES):
            self.artifacts_coming.add(trial.trial_id)
        if self._due(run_id):
            self._flush(run_id)

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        """Tag the run with its latest checkpoint (where its final weights are: tag ``checkpoint``) and
        log the artifacts the trial put in it (Tune handles the result before its checkpoint)."""
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        self.pending.setdefault(run_id, _Pending()).tags["checkpoint"] = checkpoint_uri(checkpoint)
        if trial.trial_id in self.artifacts_coming:
            self.artifacts_coming.discard(trial.trial_id)
            with checkpoint.as_directory() as directory:
                self.client.log_artifacts(run_id, str(Path(directory) / ARTIFACTS_DIR))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Write what has waited long enough (the trial may not report again for minutes)."""
        for run_id in [run_id for run_id in self.pending if self._due(run_id)]:
            self._flush(run_id)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        for run_id in list(self.pending):
            self._flush(run_id)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Tune restarts the trial (from its latest checkpoint): its run stays open, one retry more."""
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        self.client.log_batch(run_id, tags=[
            RunTag("retries", str(self.retries[trial.trial_id])),
            RunTag("last_retry_error", error_summary(error_text(trial)))])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        reason = stop_reason(trial.last_result)
        self._set_stop_reason(run_id, reason)
        self._close(run_id, "KILLED" if reason == TIME_BUDGET else "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self.run_ids.get(trial.trial_id) or self._create_run(trial)
        text = error_text(trial)
        self.client.set_tag(run_id, "error", error_summary(text))
        self.client.log_text(run_id, text, "error.txt")
        self._set_stop_reason(run_id, FAILED)
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
            self._set_stop_reason(run_id, INTERRUPTED)
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
            "retries": "0",
        }
        if optuna_trial is not None:  # which keys the searcher chose (the rest were fixed or defaults)
            tags["optuna_trial_number"] = str(optuna_trial.number)
            tags["searched_keys"] = ",".join(sorted(optuna_trial.params))
        if "_row" in trial.config:
            tags["grid_row"] = str(trial.config["_row"])
        run = self.client.create_run(self.experiment_id, tags=tags)
        log_dataset(self.client, run.info.run_id, self.trial_tags)
        params = [Param(key, str(value)) for key, value in sorted(config.items())]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run.info.run_id, params=params[start:start + 100])
        return run.info.run_id

    def _new_epoch(self, trial_id: str, run_id: str, result: Mapping[str, Any]) -> bool:
        """True for a result beyond the last epoch logged (a retried trial restored from an older
        checkpoint reports some epochs again: they are skipped). Notes each new node the trial runs on."""
        node = result.get("node_id")
        seen = self.node_ids.setdefault(trial_id, [])
        if node and (not seen or seen[-1] != node):
            seen.append(str(node))
            self.client.set_tag(run_id, "node_ids", ",".join(seen)[:_MAX_TAG])
        epoch = result.get("epochs")
        if epoch is None:
            return True
        if epoch <= self.last_epoch.get(trial_id, -1):
            return False
        self.last_epoch[trial_id] = int(epoch)
        return True

    def _set_stop_reason(self, run_id: str, reason: str) -> None:
        self.client.log_batch(run_id, tags=[RunTag("stop_reason", reason),
                                            RunTag("early_stopped", str(reason == SCHEDULER).lower())])

    def _due(self, run_id: str) -> bool:
        """A run's results are written at once when it had no write for FLUSH_INTERVAL_S."""
        return time.monotonic() - self.last_write.get(run_id, -math.inf) >= FLUSH_INTERVAL_S

    def _flush(self, run_id: str) -> None:
        """Write a run's pending results: one log_batch (more only past MLflow's 1000 metrics)."""
        pending = self.pending.pop(run_id, None)
        if pending is None:
            return
        self.last_write[run_id] = time.monotonic()
        tags = [RunTag(key, value) for key, value in pending.tags.items()]
        metrics = pending.metrics
        for start in range(0, max(len(metrics), 1), _MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[start:start + _MAX_METRICS_PER_BATCH],
                                  tags=tags if start == 0 else [])

    def _close(self, run_id: str, status: str) -> None:
        self._flush(run_id)  # every result is in the record before the run says it ended
        self.client.set_terminated(run_id, status=status)
        self.open_runs.discard(run_id)
