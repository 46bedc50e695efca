"""``python -m platform.search STUDY [options]``: run one study's search (or its reproduction grid).

The data flow of DESIGN.md: validate everything → join or start Ray → create the MLflow experiment,
the search's parent run and the Optuna study once, in this driver → run the Tuner, whose callbacks
record each trial as a nested MLflow run and print progress → log and print the summary.
Exit codes: 0 done (some trials may have failed), 1 every trial failed or an internal error,
2 bad input (one line, nothing created), 130 interrupted (state kept for --resume).
"""

from __future__ import annotations

import json
import os
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

EXIT_OK, EXIT_ALL_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class Search:
    """One search being run: its identity, its stores' handles and the trials it still has to run."""

    request: SearchRequest
    stores: Stores
    search_id: str
    kind: str  # "search" or "reproduce"
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
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _run_with_ray(request, stores)


def _check_resumable(request: SearchRequest, stores: Stores) -> None:
    """--resume needs an existing store; opening a missing SQLite file would create one."""
    if request.resume and stores.tracking_uri.startswith("sqlite:///"):
        path = Path(stores.tracking_uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise UsageError(f"--resume: no search to resume (no MLflow store at {path})")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM (a batch system's preemption) both end the search cleanly, resumable.
    SIGINT is installed explicitly: a shell starts background jobs with it ignored."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


def _run_with_ray(request: SearchRequest, stores: Stores) -> int:
    ray_cluster.use_token_auth_when_available()
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C reaches us: we close the records ourselves
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own tables: our progress line says it
    _quiet_libraries()
    _interrupt_on_signals()
    try:
        cluster = ray_cluster.connect(request.address)
        gpus = request.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if cluster.gpus else 0.0
        ray_cluster.check_fits(cluster, request.cpus_per_trial, gpus)
        request.gpus_per_trial = gpus
        return _run(request, stores, cluster)
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


def _quiet_libraries() -> None:
    """Our progress line and summary say what matters; the libraries' start-up chatter does not."""
    import logging
    import warnings

    import mlflow  # noqa: F401  (imported first: importing it resets its loggers to INFO)
    import optuna

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _run(request: SearchRequest, stores: Stores, cluster: ray_cluster.Cluster) -> int:
    from mlflow.tracking import MlflowClient

    from platform.resume import find_search
    from platform.tracking import open_experiment

    study = request.study
    client = MlflowClient(stores.tracking_uri)
    if request.resume:
        experiment = client.get_experiment_by_name(study.name)
        record = find_search(client, experiment.experiment_id if experiment else None, request.resume,
                             study.name)
        _restore_request(request, json.loads(record.tags.get("search_request", "{}")))
        search = Search(request, stores, record.search_id, "search", client, experiment.experiment_id,
                        record.parent_run_id, int(record.tags.get("attempts", "0")) + 1)
        client.update_run(search.parent_run_id, status="RUNNING")
    else:
        experiment_id = open_experiment(client, study.name, stores.artifact_root)
        kind = "reproduce" if request.reproduce else "search"
        search_id = f"{study.name}-{request.budget}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
        search = Search(request, stores, search_id, kind, client, experiment_id, "", 0)
    from platform.runner import run_search

    return run_search(search, cluster)


def _restore_request(request: SearchRequest, saved: dict[str, Any]) -> None:
    """A resumed search keeps its original settings; only --trials may grow it."""
    request.budget = saved.get("budget", request.budget)
    request.fixed = saved.get("fixed", request.fixed)
    request.scheduler = saved.get("scheduler", request.scheduler)
    if request.trials is None:
        request.trials = saved.get("trials")


if __name__ == "__main__":
    sys.exit(main())
