"""What the driver adds at the end of every search, after its summary: a re-run's mean and std, the best
trial's model (platform.best_model) and the report's table and plots (platform.report), each on the
search's MLflow runs. Each is an extra: its failure is said in one line and tagged on the parent run,
never undoing the recorded search."""

from __future__ import annotations

import os
import sys
from typing import Any

import optuna

from platform.summary import best_row, log_repeat_stats

# "0": the end-of-search report logs its table but draws no plots (the tests that do not check plots
# set it: drawing them costs ~2 s a search; DESIGN.md "Testing").
REPORT_PLOTS_ENV = "SPECTRA_REPORT_PLOTS"


def say_repeats(search: Any, rows: list[dict[str, Any]]) -> None:
    """A re-run's ``<metric>_mean`` and ``<metric>_std`` over its repeats, on the parent run and printed."""
    stats = log_repeat_stats(search.client, search.parent_run_id, rows)
    metric = search.request.study.objective.metric
    if f"{metric}_mean" in stats:
        n = sum(metric in row for row in rows if row["status"] == "FINISHED")
        std = f" ± {stats[f'{metric}_std']:.4g}" if f"{metric}_std" in stats else ""
        print(f"\n{metric} over {n} repeats: {stats[f'{metric}_mean']:.4g}{std} (mean ± sample std; "
              f"<metric>_mean and <metric>_std of every metric on run {search.parent_run_id})")


def warn(search: Any, what: str, error: Exception, tag: str) -> None:
    """An end-of-search extra failed: said in one line and tagged; the recorded search stands."""
    said = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"
    print(f"warning: {what} failed: {said}", file=sys.stderr)
    search.client.set_tag(search.parent_run_id, tag, said[:4000])


def keep_best_model(search: Any, rows: list[dict[str, Any]]) -> None:
    """The best trial's weights and config as artifacts of its run (platform.best_model)."""
    from platform.best_model import save_best_model

    best = best_row(rows, search.request.study)
    if best is None:
        return
    try:
        where = save_best_model(search.client, search.request.study, best, search.request.data)
    except Exception as error:  # noqa: BLE001  (the trials are recorded; a missing checkpoint must not undo that)
        warn(search, "keeping the best model", error, "best_model_error")
        return
    search.client.set_tag(search.parent_run_id, "best_model_run", best["run_id"])
    print(f"Best model: {where} (python -m platform.predict {best['run_id']} --data PATH)")


def attach_report_to_run(search: Any, rows: list[dict[str, Any]]) -> None:
    """The report's table and plots (platform.report) on the parent run, so the MLflow UI shows them."""
    from platform.report import attach_report

    plots = os.environ.get(REPORT_PLOTS_ENV, "1") != "0"
    try:
        names = attach_report(search.client, search.parent_run_id, search.request.study, rows,
                              search.kind, optuna_study_or_none(search) if plots else None,
                              search.request.objectives, plots=plots)
    except Exception as error:  # noqa: BLE001  (plots are extras: the record of the trials is complete)
        warn(search, "the report's plots", error, "report_error")
        return
    if names:
        print(f"Report: {', '.join(names)} on run {search.parent_run_id}")


def optuna_study_or_none(search: Any) -> optuna.Study | None:
    if search.kind != "search":
        return None
    try:
        return optuna.load_study(study_name=search.search_id, storage=search.stores.optuna_url)
    except Exception:  # noqa: BLE001  (the plots from MLflow alone still come)
        return None
