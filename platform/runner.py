"""Running one search once its inputs are valid and Ray is up: records, Tuner, interrupt, summary."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import optuna
from mlflow.entities import Param

from platform.cluster import REPO_ROOT, Cluster, default_concurrency, describe_tag
from platform.progress import ProgressLine
from platform.resume import close_orphaned_runs, data_digest, fail_orphaned_trials, trials_done
from platform.search_end import attach_report_to_run, keep_best_model, say_repeats, warn
from platform.stores import make_sqlite_folder
from platform.summary import (
    best_row,
    closing_line,
    log_summary,
    print_summary,
    reproduction_table,
    summary_table,
    trial_rows,
    trials_with_a_result,
)
from platform.tracking import TrialRecorder, log_dataset
from platform.tuner import (
    derive_seed,
    grid_param_space,
    make_grid,
    make_scheduler,
    make_searcher,
    make_tuner,
    population_size,
    trial_resources,
)
from search_spaces._study import SearchEnd

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
    deadline: float | None  # --time-budget as epoch seconds: no trial starts after it


def run_search(search: Any, cluster: Cluster) -> int:
    plan = make_plan(search, cluster)
    open_parent_run(search, plan, cluster)
    done = trials_done(search.client, search.experiment_id, search.parent_run_id)
    remaining = plan.total - done
    for line in search.stores.describe(search.experiment_id):
        print(line)
    print(f"Search id:      {search.search_id}   ({remaining} of {plan.total} trials to run, "
          f"{plan.concurrency} at once, {plan.scheduler_text})")
    if remaining <= 0:
        print("Nothing left to run.")
        return finish(search, interrupted=False)
    return run_tuner(search, plan, done, remaining)


def _say_time_budget(search: Any, plan: Plan, counts: dict[str, int]) -> None:
    """When the time budget ended the search before --trials: say so, on the terminal and the run."""
    ran = sum(counts.values()) - counts["trials_time_budget"] - counts["trials_interrupted"]
    if plan.deadline is None or time.time() <= plan.deadline or ran >= plan.total:
        return
    search.client.set_tag(search.parent_run_id, "ended_by", "time_budget")
    print(f"\nThe time budget ({search.request.time_budget_s:g} s) ended the search: {ran} of {plan.total} "
          f"trials ran; running trials finished. Continue with: python -m platform.search "
          f"{search.request.study.name} --resume {search.search_id}")


def make_plan(search: Any, cluster: Cluster) -> Plan:
    request, study = search.request, search.request.study
    base_config = study.config_for(request.budget, request.fixed)
    concurrency = request.max_concurrent or default_concurrency(cluster, request.cpus_per_trial,
                                                                request.gpus_per_trial)
    # A grid runs every row to the end; so does a multi-objective search (ASHA ranks on one metric).
    kind = request.scheduler if search.kind == "search" and not request.objectives else "fifo"
    scheduler, scheduler_text = make_scheduler(kind, study)
    seed = request.seed if request.seed is not None else derive_seed(search.search_id, search.attempt)
    grid, optuna_study = None, None
    if search.kind == "search":
        optuna_study = _open_optuna_study(search)
    elif search.kind == "rerun":  # one config, each repeat with its own seed (the first: the config's)
        config = study.config_for(request.budget, request.fixed)
        grid = [{**config, "_row": f"repeat {repeat + 1}", "train.seed": config["train.seed"] + repeat}
                for repeat in range(request.repeats)]
    else:
        grid = []
        for row in study.reproduction:
            config = study.grid_config(request.budget, row, request.fixed)
            grid += [{**config, "_row": row.label, "train.seed": config["train.seed"] + repeat}
                     for repeat in range(request.repeats)]
    if grid:  # a grid is its rows (each run --repeats times); --trials can only cut it short
        total = min(request.trials or len(grid), len(grid))
    else:
        total = request.trials or study.budgets[request.budget].trials
    request.trials = total
    deadline = time.time() + request.time_budget_s if request.time_budget_s else None
    return Plan(base_config, concurrency, scheduler, scheduler_text, seed, total, grid, optuna_study, _git(),
                deadline)


def _open_optuna_study(search: Any) -> optuna.Study:
    """The search's Optuna study (named by its search id), with trials of a dead driver closed."""
    make_sqlite_folder(search.stores.optuna_url)
    storage = optuna.storages.RDBStorage(search.stores.optuna_url)
    objectives = search.request.objectives or [(search.request.study.objective.metric,
                                                 search.request.study.objective.mode)]
    directions = ["maximize" if mode == "max" else "minimize" for _, mode in objectives]
    # A new search makes its own study (an existing name is an error, never continued); a resumed
    # search continues its own. The objectives are named, so optuna-dashboard does not say "Objective 0".
    study = optuna.create_study(storage=storage, study_name=search.search_id, directions=directions,
                                load_if_exists=search.attempt > 0)
    study.set_metric_names([metric for metric, _ in objectives])
    fail_orphaned_trials(study)
    return study


def common_tags(search: Any, plan: Plan) -> dict[str, str]:
    """Tags of the parent run and of every trial run."""
    study = search.request.study
    tags = {"study": study.name, "search_id": search.search_id, "budget": search.request.budget,
            "kind": search.kind, "git_commit": plan.git[0], **study.data_tags(plan.base_config)}
    digest = data_digest(search.request.data)
    if digest is not None:  # a user's files: the hash of what was read, checked again on --resume
        tags["dataset_hash"] = digest
    return tags


def open_parent_run(search: Any, plan: Plan, cluster: Cluster) -> None:
    """Create the search's parent run, or (resuming) update its tags and close orphaned trial runs."""
    request, client = search.request, search.client
    sampler = f"TPESampler(multivariate, group, constant_liar, seed={plan.seed})"
    if request.objectives:
        sampler = f"NSGAIISampler(population_size={population_size(plan.total)}, seed={plan.seed})"
    tags = {
        **common_tags(search, plan), "search_role": "parent", "mlflow.runName": search.search_id,
        "sampler": sampler if plan.optuna_study else "grid", "scheduler": plan.scheduler_text,
        "git_dirty": plan.git[1], **_versions(), **_host(),
        "ray_cluster": describe_tag(cluster), "ray_nodes": str(len(cluster.current_nodes())),
        "max_failures": str(request.max_failures or 0),
        "resources_per_trial": f"cpu={request.cpus_per_trial:g} gpu={request.gpus_per_trial:g}",
        "max_concurrent": str(plan.concurrency), "attempts": str(search.attempt),
        "search_request": json.dumps({"budget": request.budget, "fixed": request.fixed,
                                      "scheduler": request.scheduler, "trials": plan.total,
                                      "objectives": request.objectives}),
        "optuna_study": search.search_id, "optuna_storage": search.stores.optuna_url,
        **_rerun_tags(search),
    }
    if request.objectives:
        tags["objectives"] = ",".join(f"{metric}:{mode}" for metric, mode in request.objectives)
    if search.parent_run_id:
        for key, value in tags.items():
            client.set_tag(search.parent_run_id, key, value)
        close_orphaned_runs(client, search.experiment_id, search.parent_run_id)
        return
    if plan.optuna_study is None:  # a grid or a re-run has no Optuna study
        del tags["optuna_study"], tags["optuna_storage"]
    run = client.create_run(search.experiment_id, tags=tags, run_name=search.search_id)
    search.parent_run_id = run.info.run_id
    log_dataset(client, search.parent_run_id, tags)
    params = [Param(key, str(value)) for key, value in sorted(plan.base_config.items())]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(search.parent_run_id, params=params[start:start + 100])


def _rerun_tags(search: Any) -> dict[str, str]:
    """A re-run's parent says what it re-runs: the exported trial's run, trial and search, and repeats."""
    if search.kind != "rerun":
        return {}
    source = search.request.rerun_source or {}
    tags = {f"rerun_of_{key}": value for key, value in source.items() if key != "study"}
    return {**tags, "repeats": str(search.request.repeats)}


def run_tuner(search: Any, plan: Plan, done: int, remaining: int) -> int:
    request, study = search.request, search.request.study
    if plan.optuna_study is not None:
        pinned = {**study.budgets[request.budget].config, **request.fixed}  # not searched
        searcher = make_searcher(study, pinned, plan.optuna_study._storage, search.search_id,
                                 plan.seed, plan.deadline, request.objectives, plan.total)
        optuna_trial = searcher.optuna_trial
    else:
        searcher = make_grid(plan.grid[:remaining], plan.concurrency, plan.deadline)
        optuna_trial = lambda trial_id: None  # noqa: E731
    recorder = TrialRecorder(search.client, search.experiment_id, search.parent_run_id,
                             common_tags(search, plan), optuna_trial)
    progress = ProgressLine(plan.total, study.objective.metric, study.objective.mode, plan.concurrency,
                            done, name_of=recorder.name)
    name = search.search_id + (f"-resume{search.attempt}" if search.attempt else "")
    resources = trial_resources(study, request.cpus_per_trial, request.gpus_per_trial)
    param_space = grid_param_space(plan.grid) if plan.grid else plan.base_config
    tuner = make_tuner(study, param_space, searcher, plan.scheduler, remaining, plan.concurrency,
                       resources, search.stores.ray_storage, name, [recorder, progress],
                       plan.deadline, data=request.data, max_failures=request.max_failures or 0)
    try:
        tuner.fit()
    except KeyboardInterrupt:
        recorder.close_open_runs("KILLED")
        # The interrupt can land between a run's creation and the recorder noting it open: sweep the store.
        close_orphaned_runs(search.client, search.experiment_id, search.parent_run_id)
        if plan.optuna_study is not None:
            fail_orphaned_trials(plan.optuna_study)
        return finish(search, interrupted=True)
    return finish(search, interrupted=False, plan=plan)


def finish(search: Any, interrupted: bool, plan: Plan | None = None) -> int:
    """Summary to the parent run and the terminal; the exit code."""
    study, client = search.request.study, search.client
    rows = trial_rows(client, search.experiment_id, search.parent_run_id)
    table = summary_table(rows, study)
    counts = log_summary(client, search.parent_run_id, rows, table, study, search.search_id)
    print_summary(table, counts)
    if search.kind == "reproduce":
        print(f"\nBeside the paper ({study.reference_source}):")
        print(reproduction_table(rows, study).to_string(index=False))
    if search.kind == "rerun":
        say_repeats(search, rows)
    keep_best_model(search, rows)
    attach_report_to_run(search, rows)
    _after_search(search, rows)
    if interrupted:
        resume = f"python -m platform.search {study.name} --resume {search.search_id}"
        client.set_tag(search.parent_run_id, "resume_with", resume)
        client.set_terminated(search.parent_run_id, status="KILLED")
        print(f"\nInterrupted. Continue with: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    all_failed = trials_with_a_result(counts) == 0 and counts["trials_failed"] > 0
    client.set_terminated(search.parent_run_id, status="FAILED" if all_failed else "FINISHED")
    print(f"\n{closing_line(counts)}. Best config: artifact best_config.yaml of MLflow run "
          f"{search.parent_run_id}")
    if plan is not None:
        _say_time_budget(search, plan, counts)
    return EXIT_ALL_FAILED if all_failed else EXIT_OK


def _after_search(search: Any, rows: list[dict[str, Any]]) -> None:
    """The study's own end-of-search outputs; a failure there is said in one line, the search stands."""
    study = search.request.study
    if study.after_search is None:
        return
    end = SearchEnd(search.client, search.parent_run_id, rows, best_row(rows, study), search.request.data,
                    search.kind)
    try:
        study.after_search(end)
    except Exception as error:  # noqa: BLE001  (the trials are recorded; their extras must not undo that)
        warn(search, f"{study.name}'s end-of-search outputs", error, "after_search_error")


def _git() -> tuple[str, str]:
    """(commit, dirty) of the checkout the search runs from; both "unknown" where git cannot say (no
    .git, as on the nodes of a ``ray up`` cluster, whose checkout is synced without it)."""
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None
    commit, status = run("rev-parse", "HEAD"), run("status", "--porcelain")
    return commit or "unknown", "unknown" if status is None else str(bool(status)).lower()


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
