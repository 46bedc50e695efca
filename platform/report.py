"""``python -m platform.report STUDY``: a search's best trials beside the published figures, and its plots.

    python -m platform.report teanet_masks                          # the latest search of the study
    python -m platform.report hed_bins --search SEARCH_ID --output-dir report/

Prints a pandas table of the best trials (beside the paper's figures where a grid row of the study has
the trial's setting; a reproduction grid: its rows beside the paper) and writes matplotlib PNGs:
optimisation history, parallel coordinates and parameter importance (fANOVA) from Optuna's own
``optuna.visualization.matplotlib`` on the search's Optuna study; validation accuracy against τ per mask
scheme (a TeaNet mask search); confidence against bins (a binned-FCNN search); and the Pareto front of
the objective against training time. The same table and plots are attached to every search's parent run
at its end (:func:`attach_report`), so the MLflow UI shows them. Reads the MLflow store the search wrote
(``--tracking-uri``, default runs/mlflow.db) and the Optuna storage its parent run names.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; Optuna's matplotlib plots draw through pyplot

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from platform.options import UsageError  # noqa: E402
from platform.progress import format_table  # noqa: E402
from platform.summary import reproduction_table, summary_table  # noqa: E402
from search_spaces import Study  # noqa: E402

TABLE = "report_table.csv"
TOP = 10


# --- the table --------------------------------------------------------------------------------------
def report_table(rows: Sequence[Mapping[str, Any]], study: Study, kind: str, top: int = TOP) -> pd.DataFrame:
    """The best trials, with the published figures of the grid row that has the trial's setting (a
    reproduction grid: each row beside the paper)."""
    if kind == "reproduce":
        return reproduction_table(rows, study)
    table = summary_table(rows, study).head(top).reset_index(drop=True)
    by_trial = {row["trial"]: row for row in rows}
    for column in study.reference_columns:
        table[f"paper {column}"] = [_paper_value(by_trial[name], study, column) for name in table["trial"]]
    return table


def _paper_value(row: Mapping[str, Any], study: Study, column: str) -> Any:
    """The published figure of the one grid row whose distinguishing settings (the keys that differ
    between grid rows and are not continuous) the trial shares; blank when none or several match."""
    rows = study.reproduction
    if not rows:
        return ""
    keys = {key for grid in rows for key in grid.config
            if len({str(g.config.get(key)) for g in rows}) > 1 and not isinstance(grid.config[key], float)}
    matches = [grid for grid in rows if keys and all(
        str(grid.config.get(key)) == str(row.get(f"param:{key}")) for key in keys if key in grid.config)]
    return matches[0].reference.get(column, "") if len(matches) == 1 else ""


# --- the plots ------------------------------------------------------------------------------------
@dataclass
class Drawn:
    """The plots drawn (file name → figure) and those that could not be, with why (a plot that fails on
    these trials, e.g. fANOVA when every objective value is the same, costs only itself)."""

    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, make: Callable[[], Figure]) -> None:
        try:
            self.figures[name] = make()
        except Exception as error:  # noqa: BLE001  (said in skipped; the other plots still come)
            self.skipped[name] = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"


def draw(rows: Sequence[Mapping[str, Any]], study: Study, optuna_study: optuna.Study | None,
         objectives: Sequence[tuple[str, str]] | None = None) -> Drawn:
    """Every plot that applies to these trials."""
    done = [row for row in rows if row["status"] == "FINISHED" and study.objective.metric in row]
    drawn = Drawn()
    if optuna_study is not None and _completed(optuna_study):
        _optuna_plots(drawn, optuna_study, objectives)
    elif done:
        drawn.add("optimization_history.png", lambda: _history_from_runs(done, study))
    if any("param:mask.scheme" in row for row in done):
        drawn.add("accuracy_vs_tau.png", lambda: _accuracy_against_tau(done, study))
    if any(row.get("param:model.name") == "binned_fcnn" for row in done):
        drawn.add("confidence_vs_bins.png", lambda: _confidence_against_bins(done))
    if any("train_time_s" in row for row in done):
        drawn.add("pareto_front.png", lambda: _pareto_plot(done, study, objectives))
    return drawn


def _completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _optuna_plots(drawn: Drawn, study: optuna.Study, objectives: Sequence[tuple[str, str]] | None) -> None:
    """Optuna's own plots of the search's study; for a multi-objective one, of its first objective."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as optuna_plots

    target = {}
    if len(study.directions) > 1:
        target = {"target": lambda trial: trial.values[0], "target_name": objectives[0][0] if objectives
                  else "objective 0"}
    makers = {
        "optimization_history.png": lambda: optuna_plots.plot_optimization_history(study, **target),
        "parallel_coordinates.png": lambda: optuna_plots.plot_parallel_coordinate(study, **target),
        "param_importances.png": lambda: optuna_plots.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=0), **target),
    }

    def figure_of(make: Callable[[], Any]) -> Figure:
        axes = make()
        axes = axes.flat[0] if isinstance(axes, np.ndarray) else axes
        axes.figure.set_size_inches(9, 5)
        axes.figure.tight_layout()  # dotted parameter names are long: keep them inside the figure
        return axes.figure

    # Optuna's plots set pyplot's style globally (ggplot): rc_context gives the other plots theirs back.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for name, make in makers.items():
            if name != "optimization_history.png" and len(_completed(study)) < 2:
                drawn.skipped[name] = "fewer than two completed trials"
                continue
            drawn.add(name, functools.partial(figure_of, make))


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _history_from_runs(rows: Sequence[Mapping[str, Any]], study: Study) -> Figure:
    """The objective by trial, with the best so far (where no Optuna study can be read)."""
    metric = study.objective.metric
    ordered = sorted(rows, key=lambda row: row["trial"])
    values = np.array([row[metric] for row in ordered])
    best = np.maximum.accumulate(values) if study.objective.mode == "max" else np.minimum.accumulate(values)
    figure, axes = _figure("Optimisation history", "trial", metric)
    axes.plot(range(1, len(values) + 1), values, "o", label=metric)
    axes.step(range(1, len(values) + 1), best, where="post", label="best so far")
    axes.legend()
    return figure


def tau_of(row: Mapping[str, Any]) -> float | None:
    """The masked fraction τ a trial trained with: the fixed τ of MS1/MS3, the middle of the τ range of
    MS2/MS4/MS5 (whose τ is drawn per spectrum from it)."""
    if row.get("param:mask.scheme") in ("MS1", "MS3"):
        return float(row["param:mask.tau"])
    low, high = row.get("param:mask.tau_low"), row.get("param:mask.tau_high")
    return None if low is None or high is None else (float(low) + float(high)) / 2


def _accuracy_against_tau(rows: Sequence[Mapping[str, Any]], study: Study) -> Figure:
    metric = study.objective.metric
    figure, axes = _figure("Accuracy against τ per mask scheme",
                           "τ (masked fraction; MS2/MS4/MS5: the middle of its range)", metric)
    for scheme in sorted({row["param:mask.scheme"] for row in rows}):
        points = sorted((tau_of(row), row[metric]) for row in rows
                        if row["param:mask.scheme"] == scheme and tau_of(row) is not None)
        if points:
            axes.plot(*zip(*points, strict=True), "o-", label=scheme)
    axes.legend(title="scheme")
    return figure


def _confidence_against_bins(rows: Sequence[Mapping[str, Any]]) -> Figure:
    figure, axes = _figure("Confidence against bins (binned FCNN)", "bins B", "confidence")
    points = sorted((int(row["param:model.binned_fcnn.bins"]), row.get("confidence", np.nan)) for row in rows
                    if row.get("param:model.name") == "binned_fcnn")
    axes.plot(*zip(*points, strict=True), "o")
    axes.set_xticks(sorted({bins for bins, _ in points}))
    return figure


def pareto_set(rows: Sequence[Mapping[str, Any]],
               objectives: Sequence[tuple[str, str]]) -> list[Mapping[str, Any]]:
    """The rows no other row dominates on ``objectives`` ((metric, "max"|"min") pairs)."""
    signed = [(row, [row[m] if mode == "max" else -row[m] for m, mode in objectives]) for row in rows
              if all(m in row for m, _ in objectives)]

    def dominates(a: list[float], b: list[float]) -> bool:
        pairs = list(zip(a, b, strict=True))
        return all(x >= y for x, y in pairs) and any(x > y for x, y in pairs)

    return [row for row, values in signed if not any(dominates(other, values) for _, other in signed)]


def _pareto_plot(rows: Sequence[Mapping[str, Any]], study: Study,
                 objectives: Sequence[tuple[str, str]] | None) -> Figure:
    """The objective against training time (a multi-objective search: its first two objectives); the
    trials no other beats on both are the front."""
    metric, mode = (objectives or [(study.objective.metric, study.objective.mode)])[0]
    other, other_mode = objectives[1] if objectives else ("train_time_s", "min")
    rows = [r for r in rows if metric in r and other in r]
    front = pareto_set(rows, [(metric, mode), (other, other_mode)])
    figure, axes = _figure(f"Pareto front: {metric} ({mode}) against {other} ({other_mode})", other, metric)
    axes.plot([r[other] for r in rows], [r[metric] for r in rows], "o", alpha=0.5, label="trials")
    front_points = sorted((r[other], r[metric]) for r in front)
    axes.plot(*zip(*front_points, strict=True), "D-", color="C3", label="Pareto front")
    axes.legend()
    return figure


# --- attached to a search's parent run ------------------------------------------------------------
def attach_report(client: Any, parent_run_id: str, study: Study, rows: Sequence[Mapping[str, Any]], kind: str,
                  optuna_study: optuna.Study | None,
                  objectives: Sequence[tuple[str, str]] | None = None, plots: bool = True) -> list[str]:
    """Log the report's table (CSV) and plots (PNG, under ``report/``) to the parent run; their names."""
    import matplotlib.pyplot as plt

    names = []
    table = report_table(rows, study, kind)
    if not table.empty:
        buffer = io.StringIO()
        table.to_csv(buffer, index=False)
        client.log_text(parent_run_id, buffer.getvalue(), f"report/{TABLE}")
        names.append(f"report/{TABLE}")
    drawn = draw(rows, study, optuna_study, objectives) if plots else Drawn()
    for name, figure in drawn.figures.items():
        client.log_figure(parent_run_id, figure, f"report/{name}")
        plt.close(figure)  # Optuna's figures live in pyplot's registry until closed
        names.append(f"report/{name}")
    if drawn.skipped:
        text = "".join(f"{name}: not drawn ({why})\n" for name, why in drawn.skipped.items())
        client.log_text(parent_run_id, text, "report/not_drawn.txt")
        names.append("report/not_drawn.txt")
    return names


# --- the command ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platform.report", description=__doc__.split("\n")[0])
    parser.add_argument("study")
    parser.add_argument("--search", default="latest", metavar="SEARCH_ID",
                        help="which search (default: the latest of --kind)")
    parser.add_argument("--kind", choices=("search", "reproduce", "rerun"), default="search",
                        help="with --search latest: which kind of run is the latest (default search)")
    parser.add_argument("--tracking-uri", help="the MLflow store the search used (default runs/mlflow.db)")
    parser.add_argument("--optuna-storage", help="the search's Optuna storage (default: as its run says)")
    parser.add_argument("--output-dir", type=Path, help="where the plots go (default reports/SEARCH_ID)")
    parser.add_argument("--top", type=int, default=TOP, help=f"trials in the table (default {TOP})")
    return parser


def _load_optuna(url: str | None, name: str) -> optuna.Study | None:
    if not url:
        return None
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    try:
        return optuna.load_study(study_name=name, storage=url)
    except Exception:  # noqa: BLE001  (a moved or unreachable storage: the plots from MLflow still come)
        return None


def main(argv: list[str] | None = None) -> int:
    from platform.export import open_search

    args = build_parser().parse_args(argv)
    try:
        if args.top < 1:
            raise UsageError(f"--top {args.top}: expected a positive number")
        found = open_search(args.study, args.search, args.tracking_uri, kinds=(args.kind,), purpose="report")
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    study, record, rows = found.study, found.record, found.rows
    kind = record.tags.get("kind", "search")
    optuna_url = args.optuna_storage or record.tags.get("optuna_storage")
    optuna_study = _load_optuna(optuna_url, record.search_id) if kind == "search" else None
    table = report_table(rows, study, kind, args.top)
    print(f"Search {record.search_id} ({kind}, {len(rows)} trials), MLflow run {record.parent_run_id}")
    if study.reference_columns:
        print(f"paper columns: {study.reference_source}")
    print(table.to_string(index=False) if kind == "reproduce" else format_table(table, args.top))
    output = args.output_dir or Path("reports") / record.search_id
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / TABLE, index=False)
    written = [output / TABLE]
    drawn = draw(rows, study, optuna_study, found.objectives)
    for name, figure in drawn.figures.items():
        figure.savefig(output / name, dpi=120)
        written.append(output / name)
    for name, why in drawn.skipped.items():
        print(f"{name}: not drawn ({why})")
    if kind == "search" and optuna_study is None:
        print(f"(Optuna storage {optuna_url} not readable here: history from MLflow, no importance plots)")
    print("Wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
