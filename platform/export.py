"""``python -m platform.export STUDY``: the best configurations of a search as YAML, ready to re-run.

    python -m platform.export teanet_masks                      # the best trial of the latest search
    python -m platform.export teanet_masks --top 3 --output-dir best/
    python -m platform.export hed_architectures --where model.name=cnn --metric boundary_error:min
    python -m platform.search teanet_masks --config best/trial-0007.yaml --repeats 5

Each document holds where the trial came from (study, search id, trial, its MLflow run id, git commit,
date), its metrics at its last report and its complete typed config under ``config``, which ``--config``
takes back. Searches only, unless ``--kind`` asks for reproduction grids or re-runs (``--search ID``
names any). A multi-objective search (``--objectives``) exports its Pareto set. Reads the MLflow store
the search wrote (``--tracking-uri``, default runs/mlflow.db) and says what it wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform.options import UsageError
from platform.resume import SearchRecord
from platform.stores import open_existing_store
from platform.summary import best_config_yaml, trial_rows
from search_spaces import Study, UnknownStudyError, load_study
from trials.config import ConfigError

KINDS = ("search", "reproduce", "rerun")


@dataclass
class FoundSearch:
    """A recorded search read back: its study, parent run and trial rows, and its objectives (several
    for a multi-objective search, else None)."""

    study: Study
    record: SearchRecord
    rows: list[dict[str, Any]]
    objectives: list[tuple[str, str]] | None


def parse_objectives(text: str | None) -> list[tuple[str, str]] | None:
    """``val_accuracy:max,train_time_s:min`` → [(metric, mode), ...] (a parent run's ``objectives`` tag)."""
    if not text:
        return None
    return [(part.split(":")[0], part.split(":")[1]) for part in text.split(",")]


def open_search(study_name: str, which: str, tracking_uri: str | None, kinds: Sequence[str] = ("search",),
                purpose: str = "export") -> FoundSearch:
    """The search ``which`` (an id, or ``latest`` of the given kinds) of the study, read back."""
    from platform.resume import find_search

    try:
        study = load_study(study_name)
    except UnknownStudyError as error:
        raise UsageError(str(error)) from None
    client = open_existing_store(tracking_uri)
    experiment = client.get_experiment_by_name(study.name)
    experiment_id = experiment.experiment_id if experiment else None
    record = find_search(client, experiment_id, which, study.name,
                         kinds=KINDS if which != "latest" else tuple(kinds), purpose=purpose)
    rows = trial_rows(client, experiment_id, record.parent_run_id)
    if not rows:
        raise UsageError(f"{purpose}: search {record.search_id} has no runs")
    return FoundSearch(study, record, rows, parse_objectives(record.tags.get("objectives")))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platform.export", description=__doc__.split("\n")[0])
    parser.add_argument("study")
    parser.add_argument("--search", default="latest", metavar="SEARCH_ID",
                        help="which search (default: the latest of --kind)")
    parser.add_argument("--kind", choices=(*KINDS, "all"), default="search",
                        help="with --search latest: which kind of run is the latest (default search; "
                             "reproduction grids and re-runs are left out unless asked)")
    parser.add_argument("--top", type=int, default=1, help="how many of the best trials (default 1)")
    parser.add_argument("--metric", metavar="NAME[:max|min]",
                        help="rank by this metric (default: the study's objective; the mode defaults to "
                             "the objective's for it, else max; min for names ending in loss, _s, _mb, "
                             "error, mse)")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="only trials whose config has this value (repeatable), e.g. model.name=cnn")
    parser.add_argument("--tracking-uri", help="the MLflow store the search used (default runs/mlflow.db)")
    parser.add_argument("--output-dir", type=Path,
                        help="write one TRIAL.yaml per trial here (default: stdout)")
    return parser


def _metric(option: str | None, study: Study, rows: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    if option is None:
        return study.objective.metric, study.objective.mode
    name, _, mode = option.partition(":")
    if mode not in ("", "max", "min"):
        raise UsageError(f"--metric {option}: expected NAME, NAME:max or NAME:min")
    if not any(name in row for row in rows):
        known = sorted({k for row in rows for k, v in row.items() if isinstance(v, float)})
        raise UsageError(f"--metric {name}: no trial of this search recorded it; recorded: "
                         f"{', '.join(known)}")
    if not mode:
        minimised = name.endswith(("loss", "_s", "_mb", "error", "mse"))
        mode = study.objective.mode if name == study.objective.metric else "min" if minimised else "max"
    return name, mode


def _filters(options: Sequence[str], study: Study) -> dict[str, Any]:
    filters = {}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or key not in study.fields:
            raise UsageError(f"--where {option}: expected KEY=VALUE with a config key of {study.name}; "
                             f"known keys: {', '.join(sorted(study.fields))}")
        try:
            filters[key] = study.fields[key].parse(key, text)
        except ConfigError as error:
            raise UsageError(f"--where {option}: {error}") from None
    return filters


def _matches(row: Mapping[str, Any], filters: Mapping[str, Any], study: Study) -> bool:
    for key, value in filters.items():
        text = row.get(f"param:{key}")
        if text is None or study.fields[key].parse(key, text) != value:
            return False
    return True


def export(argv: list[str] | None = None) -> tuple[list[tuple[str, str]], str]:
    """((trial name, YAML document) of the best trials, what they are in words); UsageError on bad input."""
    from platform.report import pareto_set

    args = build_parser().parse_args(argv)
    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a positive number")
    kinds = KINDS if args.kind == "all" else (args.kind,)
    found = open_search(args.study, args.search, args.tracking_uri, kinds)
    study, record = found.study, found.record
    filters = _filters(args.where, study)
    metric, mode = _metric(args.metric, study, found.rows)
    rows = [row for row in found.rows if row["status"] == "FINISHED" and metric in row
            and _matches(row, filters, study)]
    if not rows:
        said = f" matching {' '.join(args.where)}" if filters else ""
        raise UsageError(f"export: search {record.search_id} has no finished trial{said} with {metric}")
    rows.sort(key=lambda row: row[metric], reverse=mode == "max")
    kind = record.tags.get("kind", "search")
    if found.objectives and args.metric is None:  # a multi-objective search: its Pareto set
        front = pareto_set(rows, found.objectives)
        names = ", ".join(f"{m}:{d}" for m, d in found.objectives)
        said = f"the Pareto set ({len(front)} trials) of {names} of {kind} {record.search_id}"
        return [(row["trial"], best_config_yaml(row, study, record.search_id, kind=kind, pareto=True))
                for row in front], said
    chosen = rows[:args.top]
    said = f"the best {len(chosen)} of {len(rows)} trials by {metric} ({mode}) of {kind} {record.search_id}"
    return [(row["trial"], best_config_yaml(row, study, record.search_id, kind=kind, ranked_by=metric))
            for row in chosen], said


def main(argv: list[str] | None = None) -> int:
    try:
        documents, said = export(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output_dir = build_parser().parse_args(argv).output_dir
    if output_dir is None:
        print("---\n".join(text for _, text in documents), end="")
        print(f"Exported {said} to stdout.", file=sys.stderr)
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for trial, text in documents:
        (output_dir / f"{trial}.yaml").write_text(text)
        print(output_dir / f"{trial}.yaml")
    print(f"Exported {said} to {output_dir}/.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
