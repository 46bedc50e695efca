"""Running one search once its inputs are valid and Ray is up: records, Tuner, interrupt, summary."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import optuna
from mlflow.entities import Param

from platform.cluster import REPO_ROOT, Cluster, default_concurrency
from platform.progress import ProgressLine
from platform.resume import close_orphaned_runs, fail_orphaned_trials, trials_done
from platform.summary import log_summary, print_summary, reproduction_table, summary_table, trial_rows
from platform.tracking import TrialRecorder
from platform.tuner import (
    derive_seed,
    make_grid,
    make_scheduler,
    make_searcher,
    make_tuner,
    trial_resources,
)

EXIT_OK, EXIT_ALL_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass
class Plan:
    """What this run of the search will do."""

    base_config: dict[str, Any]  # the budget's defaults and the fixed keys: complete
    concurrency: int
    scheduler: Any
    scheduler_text: str
    seed: int
    total: int  # trials of the whole search, failed ones included
    grid: list[dict[str, Any]] | None  # complete configs of a reproduction grid, else None
    optuna_study: optuna.Study | None
    git: tuple[str, str]  # (commit, dirty) of the checkout, asked once


def run_search(search: Any, cluster: Cluster) -> int:
    plan = make_plan(search, cluster)
    open_parent_run(search, plan, cluster)
    done = trials_done(search.client, search.experiment_id, search.parent_run_id)
    remaining = plan.total - done
    for line in search.stores.describe():
        print(line)
    print(f"Search id:      {search.search_id}   ({remaining} of {plan.total} trials to run, "
          f"{plan.concurrency} at once, {plan.scheduler_text})")
    if remaining <= 0:
        print("Nothing left to run.")
        return finish(search, interrupted=False)
    return run_tuner(search, plan, done, remaining)


def make_plan(search: Any, cluster: Cluster) -> Plan:
    request, study = search.request, search.request.study
    base_config = study.config_for(request.budget, request.fixed)
    concurrency = request.max_concurrent or default_concurrency(cluster, request.cpus_per_trial,
                                                                request.gpus_per_trial)
    kind = request.scheduler if search.kind == "search" else "fifo"  # a grid runs every row to the end
    searched_epochs = study.max_epochs if study.epochs_key not in request.fixed else None
    scheduler, scheduler_text = make_scheduler(kind, study, searched_epochs or base_config[study.epochs_key])
    seed = request.seed if request.seed is not None else derive_seed(search.search_id, search.attempt)
    grid, optuna_study = None, None
    if search.kind == "search":
        optuna_study = _open_optuna_study(search)
    else:
        grid = []
        for row in study.reproduction:
            config = study.grid_config(request.budget, row, request.fixed)
            grid += [{**config, "_row": row.label, "train.seed": config["train.seed"] + repeat}
                     for repeat in range(request.repeats)]
    total = request.trials or (len(grid) if grid else study.budgets[request.budget].trials)
    request.trials = total
    return Plan(base_config, concurrency, scheduler, scheduler_text, seed, total, grid, optuna_study, _git())


def _open_optuna_study(search: Any) -> optuna.Study:
    """The search's Optuna study (named by its search id), with trials of a dead driver closed."""
    storage = optuna.storages.RDBStorage(search.stores.optuna_url)
    direction = "maximize" if search.request.study.objective.mode == "max" else "minimize"
    study = optuna.create_study(storage=storage, study_name=search.search_id, direction=direction,
                                load_if_exists=True)
    fail_orphaned_trials(study)
    return study


def common_tags(search: Any, plan: Plan) -> dict[str, str]:
    """Tags of the parent run and of every trial run."""
    study = search.request.study
    return {"study": study.name, "search_id": search.search_id, "budget": search.request.budget,
            "kind": search.kind, "git_commit": plan.git[0], **study.data_tags(plan.base_config)}


def open_parent_run(search: Any, plan: Plan, cluster: Cluster) -> None:
    """Create the search's parent run, or (resuming) update its tags and close orphaned trial runs."""
    request, client = search.request, search.client
    sampler = f"TPESampler(multivariate, group, constant_liar, seed={plan.seed})"
    tags = {
        **common_tags(search, plan), "search_role": "parent", "mlflow.runName": search.search_id,
        "sampler": sampler if plan.optuna_study else "grid", "scheduler": plan.scheduler_text,
        "git_dirty": plan.git[1], **_versions(), **_host(),
        "ray_cluster": f"{cluster.address} ({cluster.cpus:g} CPU, {cluster.gpus:g} GPU)",
        "resources_per_trial": f"cpu={request.cpus_per_trial:g} gpu={request.gpus_per_trial:g}",
        "max_concurrent": str(plan.concurrency), "attempts": str(search.attempt),
        "search_request": json.dumps({"budget": request.budget, "fixed": request.fixed,
                                      "scheduler": request.scheduler, "trials": plan.total}),
        "optuna_study": search.search_id, "optuna_storage": search.stores.optuna_url,
    }
    if search.parent_run_id:
        for key, value in tags.items():
            client.set_tag(search.parent_run_id, key, value)
        close_orphaned_runs(client, search.experiment_id, search.parent_run_id)
        return
    run = client.create_run(search.experiment_id, tags=tags, run_name=search.search_id)
    search.parent_run_id = run.info.run_id
    params = [Param(key, str(value)) for key, value in sorted(plan.base_config.items())]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(search.parent_run_id, params=params[start:start + 100])


def run_tuner(search: Any, plan: Plan, done: int, remaining: int) -> int:
    request, study = search.request, search.request.study
    if plan.optuna_study is not None:
        pinned = {**study.budgets[request.budget].config, **request.fixed}  # not searched
        searcher = make_searcher(study, pinned, plan.optuna_study._storage, search.search_id,
                                 plan.seed, plan.base_config[study.epochs_key])
        optuna_trial = searcher.optuna_trial
    else:
        searcher, optuna_trial = make_grid(plan.grid, plan.concurrency), (lambda trial_id: None)
    recorder = TrialRecorder(search.client, search.experiment_id, search.parent_run_id,
                             common_tags(search, plan), study.epochs_key, optuna_trial)
    progress = ProgressLine(plan.total, study.objective.metric, study.objective.mode, plan.concurrency,
                            done, name_of=recorder.name)
    name = search.search_id + (f"-resume{search.attempt}" if search.attempt else "")
    resources = trial_resources(study, request.cpus_per_trial, request.gpus_per_trial)
    # A grid's points may only set keys the param space has: give the row label a place.
    param_space = {**plan.base_config, "_row": ""} if plan.grid else plan.base_config
    tuner = make_tuner(study, param_space, searcher, plan.scheduler, remaining, plan.concurrency,
                       resources, search.stores.ray_storage, name, [recorder, progress],
                       request.time_budget_s, data=request.data)
    try:
        tuner.fit()
    except KeyboardInterrupt:
        recorder.close_open_runs("KILLED")
        if plan.optuna_study is not None:
            fail_orphaned_trials(plan.optuna_study)
        return finish(search, interrupted=True)
    return finish(search, interrupted=False)


def finish(search: Any, interrupted: bool) -> int:
    """Summary to the parent run and the terminal; the exit code."""
    study, client = search.request.study, search.client
    rows = trial_rows(client, search.experiment_id, search.parent_run_id)
    table = summary_table(rows, study)
    counts = log_summary(client, search.parent_run_id, rows, table, study, search.search_id)
    print_summary(table, counts)
    if search.kind == "reproduce":
        print(f"\nBeside the paper ({study.reference_source}):")
        print(reproduction_table(rows, study).to_string(index=False))
    if interrupted:
        resume = f"python -m platform.search {study.name} --resume {search.search_id}"
        client.set_tag(search.parent_run_id, "resume_with", resume)
        client.set_terminated(search.parent_run_id, status="KILLED")
        print(f"\nInterrupted. Continue with: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finished = counts["trials_finished"] + counts["trials_stopped"]
    all_failed = finished == 0 and counts["trials_failed"] > 0
    client.set_terminated(search.parent_run_id, status="FAILED" if all_failed else "FINISHED")
    print(f"\n{finished} trials done ({counts['trials_stopped']} stopped early by the scheduler), "
          f"{counts['trials_failed']} failed. Best config: artifact best_config.yaml of MLflow run "
          f"{search.parent_run_id}")
    return EXIT_ALL_FAILED if all_failed else EXIT_OK


def _git() -> tuple[str, str]:
    """(commit, dirty) of the checkout the search runs from."""
    def run(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return run("rev-parse", "HEAD") or "unknown", str(bool(run("status", "--porcelain"))).lower()


def _host() -> dict[str, str]:
    import torch

    import platform

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"host_cpu": f"{_cpu_model() or platform.processor() or platform.machine()} × {os.cpu_count()}",
            "host_gpu": ", ".join(gpus) or "none"}


def _cpu_model() -> str:
    """The CPU's model name on Linux (``platform.processor()`` is often empty there)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _versions() -> dict[str, str]:
    names = ("torch", "ray", "optuna", "mlflow")
    return {f"version_{name}": importlib.metadata.version(name) for name in names}
