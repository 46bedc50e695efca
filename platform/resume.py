"""Continuing a search after Ctrl-C or a killed driver (DESIGN.md, "--resume").

Rather than ``Tuner.restore`` (which after a SIGKILL crashes on an RDB study whose saved searcher is
older than the database), a resumed search is a new Tune run over the same Optuna study, MLflow parent
run and search id: trials that were running are closed as KILLED (MLflow) and FAIL (Optuna), their
configurations are queued to run again as new trials, and the search runs what is left of ``--trials``.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from typing import Any

import optuna
from mlflow.tracking import MlflowClient

from platform.options import SearchRequest, UsageError
from platform.tracking import child_runs, find_search_runs
from trials.contract import INTERRUPTED

ORPHANED = "orphaned"  # Optuna user attribute of a trial whose driver went away


@dataclass(frozen=True)
class SearchRecord:
    search_id: str
    parent_run_id: str
    tags: dict[str, str]


def find_search(client: MlflowClient, experiment_id: str | None, which: str, study: str,
                kinds: tuple[str, ...] = ("search",), purpose: str = "--resume") -> SearchRecord:
    """The newest search of the study (``which="latest"``), or the one with that id; only searches
    of the given kinds (a reproduction grid is not resumed: it is run again)."""
    runs = find_search_runs(client, experiment_id) if experiment_id else []
    runs = [run for run in runs if run.data.tags.get("kind", "search") in kinds]
    if which != "latest":
        runs = [run for run in runs if run.data.tags.get("search_id") == which]
    if not runs:
        target = f"search {which!r}" if which != "latest" else f"search of study {study!r}"
        raise UsageError(f"{purpose}: no {target} in this MLflow store")
    run = runs[0]
    return SearchRecord(run.data.tags["search_id"], run.info.run_id, dict(run.data.tags))


def close_orphaned_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> int:
    """Child runs left RUNNING by a killed driver become KILLED; returns how many."""
    closed = 0
    for run in child_runs(client, experiment_id, parent_run_id):
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "interrupted", "true")
            client.set_tag(run.info.run_id, "stop_reason", INTERRUPTED)
            client.set_terminated(run.info.run_id, status="KILLED")
            closed += 1
    return closed


def fail_orphaned_trials(study: optuna.Study) -> int:
    """Optuna trials left RUNNING become FAIL, and their parameters are queued to run again."""
    orphans = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in orphans:
        study._storage.set_trial_user_attr(trial._trial_id, ORPHANED, True)
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        if trial.params:  # a trial asked for but never given its parameters has nothing to re-run
            study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number}, skip_if_exists=False)
    return len(orphans)


def trials_done(client: MlflowClient, experiment_id: str, parent_run_id: str) -> int:
    """Trials that count toward --trials: finished or failed, not killed (those run again)."""
    runs = child_runs(client, experiment_id, parent_run_id)
    return sum(run.info.status in ("FINISHED", "FAILED") for run in runs)


def reread_data(request: SearchRequest, tags: dict[str, str]) -> None:
    """A resumed search trains on the data it was started on: the user's files are read again, with
    the same validation, and must hash as they did at the first attempt."""
    study = request.study
    try:
        request.data = study.load_data(study.config_for(request.budget, request.fixed))
    except ValueError as error:  # ConfigError and DataError included: one line, exit 2
        raise UsageError(f"--resume: the search's data cannot be read again: {error}") from None
    first, now = tags.get("dataset_hash"), data_digest(request.data)
    if request.data is not None and first and first != now:
        raise UsageError(f"--resume: the search's data changed since it started (content hash {first} "
                         f"then, {now} now); start a new search for the new data")


def data_digest(data: Any) -> str | None:
    """A short hash of the content of a user's data as the driver read it (None for generated data,
    whose study tags name the generator's settings instead)."""
    if data is None:
        return None
    return hashlib.sha256(pickle.dumps(data, protocol=4)).hexdigest()[:12]
