"""``python -m platform.search STUDY [options]``: run one study's search (or its reproduction grid).

The data flow of DESIGN.md: validate everything → join or start Ray → create the MLflow experiment,
the search's parent run and the Optuna study once, in this driver → run the Tuner, whose callbacks
record each trial as a nested MLflow run and print progress → log and print the summary.
Exit codes: 0 done (some trials may have failed), 1 every trial failed or an internal error,
2 bad input (one line, nothing created), 130 interrupted (state kept for --resume).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform import cluster as ray_cluster
from platform import describe
from platform.options import SearchRequest, UsageError, parse_request
from platform.stores import Stores, check_reachable, resolve_stores
from platform.tracking_store import PatientClient, open_tracking_store

EXIT_OK, EXIT_ALL_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class Search:
    """One search being run: its identity, its stores' handles and the trials it still has to run."""

    request: SearchRequest
    stores: Stores
    search_id: str
    kind: str  # "search", "reproduce" or "rerun"
    client: Any  # MlflowClient
    experiment_id: str
    parent_run_id: str
    attempt: int  # 0 for a new search, k for its k-th resume


def main(argv: list[str] | None = None) -> int:
    try:
        request = parse_request(argv)
        if request == "list":
            print(describe.listing())
            return EXIT_OK
        if isinstance(request, str):
            from search_spaces import load_study

            print(describe.show(load_study(request.removeprefix("show:"))))
            return EXIT_OK
        stores = resolve_stores(request)
        check_reachable(request, stores)
        _check_resumable(request, stores)
        resumed = _resumed_search(request, stores) if request.resume else None
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _run_with_ray(request, stores, resumed)


def _check_resumable(request: SearchRequest, stores: Stores) -> None:
    """--resume needs an existing store; opening a missing SQLite file would create one."""
    if request.resume and stores.tracking_uri.startswith("sqlite:///"):
        path = Path(stores.tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise UsageError(f"--resume: no search to resume (no MLflow store at {path})")


def _resumed_search(request: SearchRequest, stores: Stores) -> tuple[Any, str, Any]:
    """(client, experiment id, record) of the search to resume, its settings restored and its data read
    again, before Ray starts: a search that cannot be resumed is bad input, said at once."""
    from platform.resume import find_search, reread_data

    client = PatientClient(open_tracking_store(stores.tracking_uri))
    experiment = client.get_experiment_by_name(request.study.name)
    experiment_id = experiment.experiment_id if experiment else None
    record = find_search(client, experiment_id, request.resume, request.study.name)
    _restore_request(request, json.loads(record.tags.get("search_request", "{}")))
    reread_data(request, record.tags)
    return client, experiment_id, record


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM (a batch system's preemption) both end the search cleanly, resumable.
    SIGINT is installed explicitly: a shell starts background jobs with it ignored."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _run_with_ray(request: SearchRequest, stores: Stores, resumed: tuple[Any, str, Any] | None = None) -> int:
    ray_cluster.use_token_auth_when_available()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C reaches us: we close the records ourselves
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables: our progress line says it
    # A trial that starts after --time-budget returns without a report (trials.contract); Tune's strict
    # check takes its result (which holds the config) for one missing the metric and ends the search when
    # it is the first result of the run (seen on a loaded machine): our contract checks the metrics.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    # Trials checkpoint every epoch and Tune keeps two per trial, so with epochs of a second or two Tune
    # forces an experiment snapshot at almost every result and warns each time (55 warnings in a default
    # run): the price of surviving a lost node, paid knowingly (README "On a cluster").
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # MLflow draws a progress bar for every download (the end-of-search figures); ours are small files.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _quiet_libraries()
    _interrupt_on_signals()
    try:
        cluster = ray_cluster.connect(request.address)
        for line in (cluster.headline(), cluster.autoscaler_line()):
            if line:
                print(line, flush=True)
        if request.gpus_per_trial is None:
            request.gpus_per_trial = 1.0 if ray_cluster.can_have_gpus(cluster) else 0.0
        if request.max_failures is None:
            request.max_failures = ray_cluster.default_max_failures(cluster)
        memory_gb = request.study.memory_gb(request.study.config_for(request.budget, request.fixed))
        fit = ray_cluster.check_fits(cluster, request.cpus_per_trial, request.gpus_per_trial, memory_gb)
        if fit.verdict == "wait":
            if not _wait_for_autoscaler(request, fit, memory_gb):
                return EXIT_ALL_FAILED
            cluster = ray_cluster.refreshed(cluster)
        return _run(request, stores, cluster, resumed)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("\ninterrupted before the search started", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # an internal error: say so with the traceback, exit 1
        traceback.print_exc()
        return EXIT_ALL_FAILED
    finally:
        ray.shutdown()


def _wait_for_autoscaler(request: SearchRequest, fit: ray_cluster.Fit, memory_gb: float) -> bool:
    """Say what we wait for and wait, bounded by --time-budget (which the wait then counts against);
    False when the budget ran out first. Without a budget, wait as long as Tune would."""
    bound = request.time_budget_s
    print(fit.message + (f", for at most {bound:g} s (--time-budget)" if bound else ""), flush=True)
    ask = ray_cluster.trial_ask(request.cpus_per_trial, request.gpus_per_trial, memory_gb)
    waited = ray_cluster.wait_for_node(ask, bound)
    if waited is None:
        print(f"error: the autoscaler added no node with {ray_cluster.describe_ask(ask)} within the time "
              f"budget ({bound:g} s); nothing was run", file=sys.stderr)
        return False
    print(f"A node with {ray_cluster.describe_ask(ask)} joined after {waited:.0f} s.", flush=True)
    if bound:
        request.time_budget_s = max(bound - waited, 1.0)
    return True


def _quiet_libraries() -> None:
    """Our progress line and summary say what matters; the libraries' start-up chatter does not."""
    import logging
    import warnings

    import mlflow  # noqa: F401  (imported first: importing it resets its loggers to INFO)
    import optuna

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _run(request: SearchRequest, stores: Stores, cluster: ray_cluster.Cluster,
         resumed: tuple[Any, str, Any] | None) -> int:
    from platform.tracking import open_experiment

    study = request.study
    if resumed:
        client, experiment_id, record = resumed
        search = Search(request, stores, record.search_id, "search", client, experiment_id,
                        record.parent_run_id, int(record.tags.get("attempts", "0")) + 1)
        client.update_run(search.parent_run_id, status="RUNNING")
    else:
        client = PatientClient(open_tracking_store(stores.tracking_uri))  # safe beside other processes
        experiment_id = open_experiment(client, study.name, stores.artifact_root, study.description)
        kind = "reproduce" if request.reproduce else "rerun" if request.reruns else "search"
        search = Search(request, stores, new_search_id(study.name, request.budget, kind), kind, client,
                        experiment_id, "", 0)
    from platform.runner import run_search

    if search.kind == "rerun":
        return _run_reruns(search, cluster)
    return run_search(search, cluster)


def _run_reruns(first: Search, cluster: ray_cluster.Cluster) -> int:
    """``--config FILE --repeats N``: each config of the file is a re-run of its own (a parent run of
    kind=rerun, one child per repeat), one after the other; the worst exit code."""
    from platform.runner import run_search

    codes = []
    documents = first.request.reruns or []
    for number, document in enumerate(documents):
        if number:
            print()
        search = first if number == 0 else dataclasses.replace(
            first, search_id=new_search_id(first.request.study.name, first.request.budget, "rerun"),
            parent_run_id="")
        search.request = dataclasses.replace(first.request, fixed=document.config,
                                             rerun_source=document.source, trials=None)
        codes.append(run_search(search, cluster))
        if codes[-1] == EXIT_INTERRUPTED:
            break
    return max(codes, key=lambda code: (code == EXIT_INTERRUPTED, code))


def new_search_id(study: str, budget: str, kind: str) -> str:
    """``<study>-<budget>-<kind>-<date>-<time>-<random>``: readable, ordered by start, and distinct
    even for searches started within the same second (the random part), so two searches never share
    an MLflow parent run or an Optuna study."""
    return f"{study}-{budget}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def _restore_request(request: SearchRequest, saved: dict[str, Any]) -> None:
    """A resumed search keeps its original settings; only --trials may grow it."""
    request.budget = saved.get("budget", request.budget)
    request.fixed = saved.get("fixed", request.fixed)
    request.scheduler = saved.get("scheduler", request.scheduler)
    if saved.get("objectives"):
        request.objectives = [tuple(pair) for pair in saved["objectives"]]
    if request.trials is None:
        request.trials = saved.get("trials")


if __name__ == "__main__":
    sys.exit(main())
