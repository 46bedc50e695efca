"""The end of a search: its trials as a table (from MLflow, so resumed attempts are included), the
summary logged to the parent run, and a reproduction grid printed beside the paper's figures."""

from __future__ import annotations

import datetime
import io
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from platform.progress import format_table, results_table
from platform.tracking import child_runs
from search_spaces import Study
from trials.contract import COMPLETED, FAILED, INTERRUPTED, SCHEDULER, STOP_REASONS


def trial_rows(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[dict[str, Any]]:
    """One dict per child run: name, status, why it ended, the metrics of its last report and its
    params."""
    rows = []
    for run in child_runs(client, experiment_id, parent_run_id):
        rows.append({"trial": run.data.tags.get("mlflow.runName", run.info.run_id[:8]),
                     "status": run.info.status, "stop_reason": run_stop_reason(run),
                     "run_id": run.info.run_id, "error": run.data.tags.get("error", ""),
                     "grid_row": run.data.tags.get("grid_row"),
                     "searched_keys": run.data.tags.get("searched_keys"),
                     "git_commit": run.data.tags.get("git_commit"), "start_time": run.info.start_time,
                     **last_report_metrics(run), **{f"param:{k}": v for k, v in run.data.params.items()}})
    return rows


def run_stop_reason(run: Any) -> str:
    """The run's ``stop_reason`` tag; for runs recorded before the tag existed, what its status and
    ``early_stopped`` tag said."""
    tags = run.data.tags
    if "stop_reason" in tags:
        return tags["stop_reason"]
    status = run.info.status
    if status == "FINISHED":
        return SCHEDULER if tags.get("early_stopped") == "true" else COMPLETED
    return {"FAILED": FAILED, "KILLED": INTERRUPTED}.get(status, status.lower())


def last_report_metrics(run: Any) -> dict[str, float]:
    """The metrics of the run's last step only: a metric an earlier epoch logged but the last report
    left out (``boundary_error`` once no boundary is found) is not the trial's result. MLflow's run
    data keeps each metric's latest value with its step (``RunData._metric_objs``: no public
    accessor carries the step)."""
    latest = getattr(run.data, "_metric_objs", None)
    if not latest:
        return dict(run.data.metrics)
    last_step = max(metric.step for metric in latest)
    return {metric.key: metric.value for metric in latest if metric.step == last_step}


def searched_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys the searcher chose (from each run's ``searched_keys`` tag), else, for a grid, the
    config keys whose values differ between trials."""
    tagged = [row["searched_keys"] for row in rows if row.get("searched_keys") is not None]
    if tagged:
        return sorted({key for keys in tagged for key in keys.split(",") if key})
    params = [{k.removeprefix("param:"): v for k, v in row.items() if k.startswith("param:")} for row in rows]
    keys = set().union(*params) if params else set()
    return sorted(k for k in keys if len({p.get(k) for p in params}) > 1 and k != "train.seed")


def summary_table(rows: Sequence[Mapping[str, Any]], study: Study) -> pd.DataFrame:
    """The trials, best first, with the values each trial's searcher chose (blank where a key does not
    apply to that trial, e.g. mask.tau under MS4)."""
    keys = searched_keys(rows)
    flat = [{**row, **{k: _shown_param(row, k) for k in keys}} for row in rows]
    return results_table(flat, study.objective.metric, study.objective.mode, keys, study.result_columns)


def _shown_param(row: Mapping[str, Any], key: str) -> Any:
    searched = row.get("searched_keys")
    if searched is not None and key not in searched.split(","):
        return ""
    value = row.get(f"param:{key}", "")
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return value


def ranked_rows(rows: Sequence[Mapping[str, Any]], study: Study) -> list[Mapping[str, Any]]:
    """Trials that produced a result (finished, whatever stopped them), best first."""
    metric = study.objective.metric
    done = [row for row in rows if row["status"] == "FINISHED" and metric in row]
    return sorted(done, key=lambda row: row[metric], reverse=study.objective.mode == "max")


def best_row(rows: Sequence[Mapping[str, Any]], study: Study) -> Mapping[str, Any] | None:
    ranked = ranked_rows(rows, study)
    return ranked[0] if ranked else None


def typed_config(row: Mapping[str, Any], study: Study) -> dict[str, Any]:
    """The trial's config with values in their field types (MLflow keeps params as text)."""
    return {key: study.fields[key].parse(key, value) for key, value in
            ((k.removeprefix("param:"), v) for k, v in row.items() if k.startswith("param:"))
            if key in study.fields}


def best_config_yaml(row: Mapping[str, Any], study: Study, search_id: str, **extra: Any) -> str:
    """A trial as a YAML document ``--config`` takes back: where it came from (study, search, trial, its
    MLflow run, git commit, date), its metrics at its last report, and its complete typed config."""
    started = row.get("start_time")
    date = None
    if started:
        utc = datetime.timezone.utc
        date = datetime.datetime.fromtimestamp(started / 1000, utc).isoformat("T", "seconds")
    document = {"study": study.name, "search_id": search_id, "trial": row["trial"],
                "run_id": row["run_id"], **extra, "git_commit": row.get("git_commit"), "date": date,
                "status": row["status"], "stop_reason": row.get("stop_reason"),
                "epochs_run": row.get("epochs"),
                study.objective.metric: row[study.objective.metric],
                **({"accuracy": row["accuracy"]} if "accuracy" in row else {}),
                "metrics": {name: row[name] for name in metric_names([row])},
                "config": typed_config(row, study)}
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def log_summary(client: MlflowClient, parent_run_id: str, rows: Sequence[Mapping[str, Any]],
                table: pd.DataFrame, study: Study, search_id: str) -> dict[str, int]:
    """Counts by why trials ended (``trials_<stop_reason>``), the best value, the trials table (CSV)
    and the best config (YAML) on the parent run."""
    counts = {f"trials_{reason}": sum(r["stop_reason"] == reason for r in rows) for reason in STOP_REASONS}
    for name, value in counts.items():
        client.log_metric(parent_run_id, name, value)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    client.log_text(parent_run_id, buffer.getvalue(), "trials.csv")
    best = best_row(rows, study)
    if best is not None:
        client.log_metric(parent_run_id, f"best_{study.objective.metric}", best[study.objective.metric])
        client.set_tag(parent_run_id, "best_trial", best["trial"])
        client.log_text(parent_run_id, best_config_yaml(best, study, search_id), "best_config.yaml")
    return counts


def reproduction_table(rows: Sequence[Mapping[str, Any]], study: Study) -> pd.DataFrame:
    """Each grid row's results (mean ± std over repeats; accuracies in %, as the papers print them)
    beside the published figures."""
    metric = study.objective.metric
    by_label: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_label.setdefault(row.get("grid_row") or row["trial"], []).append(row)
    lines = []
    for grid_row in study.reproduction:
        runs = [r for r in by_label.get(grid_row.label, []) if metric in r]
        line: dict[str, Any] = {"setting": grid_row.label, "runs": len(runs)}
        for name in dict.fromkeys((metric, *study.result_columns)):
            values = pd.Series([r.get(name) for r in runs], dtype=float)
            percent = "accuracy" in name  # TeaNet prints accuracies in %; HED prints confidence as a fraction
            line[f"{name} %" if percent else name] = _mean_std(values * 100 if percent else values)
        for column in study.reference_columns:
            line[f"paper {column}"] = grid_row.reference.get(column)
        lines.append(line)
    return pd.DataFrame(lines)


def _mean_std(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f} ± {values.std():.2f}"


def print_summary(table: pd.DataFrame, counts: Mapping[str, int], limit: int = 10) -> None:
    said = ", ".join(f"{value} {name.removeprefix('trials_')}" for name, value in counts.items() if value)
    print(f"\nTop trials ({said or 'none'}):")
    print(format_table(table, limit))


def trials_with_a_result(counts: Mapping[str, int]) -> int:
    """Trials that trained and were recorded FINISHED, whatever ended them."""
    return counts["trials_completed"] + counts["trials_own_rule"] + counts["trials_scheduler"]


def closing_line(counts: Mapping[str, int]) -> str:
    """How many trials gave a result and why the others ended, in words."""
    done = trials_with_a_result(counts)
    parts = [f"{done} trials done ({counts['trials_completed']} completed, {counts['trials_own_rule']} "
             f"ended by their own rule, {counts['trials_scheduler']} stopped early by the scheduler)",
             f"{counts['trials_failed']} failed"]
    if counts["trials_time_budget"]:
        parts.append(f"{counts['trials_time_budget']} not started (time budget)")
    if counts["trials_interrupted"]:
        parts.append(f"{counts['trials_interrupted']} interrupted")
    return ", ".join(parts)


def metric_names(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics of the rows (their last reports), in first-seen order."""
    names = (key for row in rows for key, value in row.items()
             if not key.startswith("param:") and isinstance(value, float))
    return list(dict.fromkeys(names))


def log_repeat_stats(client: MlflowClient, parent_run_id: str,
                     rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Over the repeats of a re-run that gave a result: ``<metric>_mean`` and ``<metric>_std`` (sample
    std; left out for a single repeat, where it is undefined) of every metric on the parent run, and
    each repeat's value of it at its step (DESIGN.md, recording conventions). Returns the statistics."""
    from mlflow.entities import Metric

    done = sorted((row for row in rows if row["status"] == "FINISHED"), key=lambda row: row["trial"])
    now, stats, points = int(time.time() * 1000), {}, []
    for name in metric_names(done):
        values = pd.Series([row.get(name) for row in done], dtype=float).dropna()
        if values.empty:
            continue
        stats[f"{name}_mean"] = float(values.mean())
        if len(values) > 1:
            stats[f"{name}_std"] = float(values.std(ddof=1))
        points += [Metric(name, float(row[name]), now, step) for step, row in enumerate(done) if name in row]
    metrics = [Metric(key, value, now, 0) for key, value in stats.items()] + points
    for start in range(0, len(metrics), 1000):  # MLflow's log_batch limit
        client.log_batch(parent_run_id, metrics=metrics[start:start + 1000])
    return stats
