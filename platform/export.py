"""``python -m platform.export STUDY``: the best configurations of a search as YAML, ready to re-run.

    python -m platform.export teanet_masks                      # the best trial of the latest search
    python -m platform.export teanet_masks --top 3 --output-dir best/
    python -m platform.search teanet_masks --config best/trial-0007.yaml --budget paper

Each document holds the trial's complete config (typed) under ``config``, which ``--config`` fixes, with
the trial it came from and its objective value. Reads the MLflow store the search wrote.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform.options import UsageError
from platform.stores import resolve_tracking_uri
from platform.summary import best_config_yaml, ranked_rows, trial_rows
from search_spaces import UnknownStudyError, load_study


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platform.export", description=__doc__.split("\n")[0])
    parser.add_argument("study")
    parser.add_argument("--search", default="latest", metavar="SEARCH_ID",
                        help="which search (default: the latest of the study)")
    parser.add_argument("--top", type=int, default=1, help="how many of the best trials (default 1)")
    parser.add_argument("--tracking-uri", help="the MLflow store the search used (default runs/mlflow.db)")
    parser.add_argument("--output-dir", type=Path,
                        help="write one TRIAL.yaml per trial here (default: stdout)")
    return parser


def export(argv: list[str] | None = None) -> list[tuple[str, str]]:
    """(trial name, YAML document) of the best trials; raises UsageError on bad input."""
    from mlflow.tracking import MlflowClient

    from platform.resume import find_search

    args = build_parser().parse_args(argv)
    if args.top < 1:
        raise UsageError(f"--top {args.top}: expected a positive number")
    try:
        study = load_study(args.study)
    except UnknownStudyError as error:
        raise UsageError(str(error)) from None
    uri, _ = resolve_tracking_uri(args.tracking_uri, Path.cwd().resolve() / "runs")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UsageError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run a search first")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study.name)
    record = find_search(client, experiment.experiment_id if experiment else None, args.search, study.name,
                         kinds=("search", "reproduce"), purpose="export")
    rows = ranked_rows(trial_rows(client, experiment.experiment_id, record.parent_run_id), study)
    if not rows:
        raise UsageError(f"export: search {record.search_id} has no finished trial")
    return [(row["trial"], best_config_yaml(row, study, record.search_id)) for row in rows[:args.top]]


def main(argv: list[str] | None = None) -> int:
    try:
        documents = export(argv)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output_dir = build_parser().parse_args(argv).output_dir
    if output_dir is None:
        print("---\n".join(text for _, text in documents), end="")
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for trial, text in documents:
        (output_dir / f"{trial}.yaml").write_text(text)
        print(output_dir / f"{trial}.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
