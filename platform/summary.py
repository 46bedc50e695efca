"""The end of a search: its trials as a table (from MLflow, so resumed attempts are included), the
summary logged to the parent run, and a reproduction grid printed beside the paper's figures."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from platform.progress import format_table, results_table
from platform.tracking import child_runs
from search_spaces import Study


def trial_rows(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list[dict[str, Any]]:
    """One dict per child run: name, status, early_stopped, its final metrics and its params."""
    rows = []
    for run in child_runs(client, experiment_id, parent_run_id):
        status = run.info.status
        if status == "FINISHED" and run.data.tags.get("early_stopped") == "true":
            status = "STOPPED"  # finished by the scheduler, before its last epoch
        rows.append({"trial": run.data.tags.get("mlflow.runName", run.info.run_id[:8]), "status": status,
                     "run_id": run.info.run_id, "error": run.data.tags.get("error", ""),
                     "grid_row": run.data.tags.get("grid_row"),
                     "searched_keys": run.data.tags.get("searched_keys"),
                     **run.data.metrics, **{f"param:{k}": v for k, v in run.data.params.items()}})
    return rows


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
    """Trials that produced a result (finished, or stopped early by the scheduler), best first."""
    metric = study.objective.metric
    done = [row for row in rows if row["status"] in ("FINISHED", "STOPPED") and metric in row]
    return sorted(done, key=lambda row: row[metric], reverse=study.objective.mode == "max")


def best_row(rows: Sequence[Mapping[str, Any]], study: Study) -> Mapping[str, Any] | None:
    ranked = ranked_rows(rows, study)
    return ranked[0] if ranked else None


def typed_config(row: Mapping[str, Any], study: Study) -> dict[str, Any]:
    """The trial's config with values in their field types (MLflow keeps params as text)."""
    return {key: study.fields[key].parse(key, value) for key, value in
            ((k.removeprefix("param:"), v) for k, v in row.items() if k.startswith("param:"))
            if key in study.fields}


def best_config_yaml(row: Mapping[str, Any], study: Study, search_id: str) -> str:
    document = {"study": study.name, "search_id": search_id, "trial": row["trial"],
                "run_id": row["run_id"], "status": row["status"], "epochs_run": row.get("epochs"),
                study.objective.metric: row[study.objective.metric], "accuracy": row.get("accuracy"),
                "config": typed_config(row, study)}
    return yaml.safe_dump(document, sort_keys=False)


def log_summary(client: MlflowClient, parent_run_id: str, rows: Sequence[Mapping[str, Any]],
                table: pd.DataFrame, study: Study, search_id: str) -> dict[str, int]:
    """Counts, the best value, the trials table (CSV) and the best config (YAML) on the parent run."""
    counts = {f"trials_{s.lower()}": sum(r["status"] == s for r in rows)
              for s in ("FINISHED", "STOPPED", "FAILED", "KILLED")}
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
    said = ", ".join(f"{value} {name.removeprefix('trials_')}" for name, value in counts.items())
    print(f"\nTop trials ({said}):")
    print(format_table(table, limit))
