"""Continuing a search after Ctrl-C or a killed driver (DESIGN.md, "--resume").

Rather than ``Tuner.restore`` (which after a SIGKILL crashes on an RDB study whose saved searcher is
older than the database), a resumed search is a new Tune run over the same Optuna study, MLflow parent
run and search id: trials that were running are closed as KILLED (MLflow) and FAIL (Optuna), their
configurations are queued to run again as new trials, and the search runs what is left of ``--trials``.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from mlflow.tracking import MlflowClient

from platform.options import UsageError
from platform.tracking import child_runs, find_search_runs

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
