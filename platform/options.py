"""The command line of ``python -m platform.search`` and its validation into a :class:`SearchRequest`.

Platform-level settings are flags; everything about the study itself is a config key set with
``--set key=value`` (DESIGN.md, "Command-line conventions"). All checks that need no cluster and no
store happen here, so bad input is reported before anything is created.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from models.config import ConfigError, check_keys, parse_assignment
from search_spaces import Study, UnknownStudyError, list_studies, load_study


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2, nothing created."""


@dataclass
class SearchRequest:
    """Everything a search needs to know, validated."""

    study: Study
    budget: str
    trials: int | None  # None: the budget's number (or, with --reproduce, the grid's size)
    fixed: dict[str, Any]  # --config then --set: keys removed from the search space
    max_concurrent: int | None = None  # None: as many as the cluster's CPUs allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float | None = None  # None: 1 per trial when the cluster has GPUs, else 0
    scheduler: str = "asha"
    address: str | None = None
    tracking_uri: str | None = None
    optuna_storage: str | None = None
    storage: str | None = None
    seed: int | None = None
    time_budget_s: float | None = None
    resume: str | None = None  # "latest" or a search id
    reproduce: bool = False
    repeats: int = 1
    data: Any = None  # a user's data read by the driver, handed to every trial through Ray


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m platform.search",
        description="Run a hyperparameter study: Ray Tune schedules the trials, Optuna proposes the "
                    "configurations, MLflow records every trial.",
        epilog="Example: python -m platform.search teanet_masks --budget quick --set loss.gamma=0.3",
    )
    parser.add_argument("study", nargs="?", help="study name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the studies and exit")
    parser.add_argument("--show", action="store_true",
                        help="print the study's space, objective, budgets and grid; run nothing")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="fix a config key (repeatable); it is removed from the search space")
    parser.add_argument("--config", type=Path, help="YAML file of config keys to fix (e.g. an export)")
    parser.add_argument("--budget", help="smoke | quick | paper (default: the study's)")
    parser.add_argument("--trials", type=int, help="total trials of the search, failed ones included")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: CPUs / cpus-per-trial)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float,
                        help="fractions allowed, e.g. 0.25 (default: 1 when the cluster has GPUs)")
    parser.add_argument("--scheduler", choices=("asha", "fifo"), default="asha",
                        help="asha stops poor trials early; fifo runs every trial to the end")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, a running cluster "
                                          "on this node, else a local one)")
    parser.add_argument("--tracking-uri", help="MLflow store: http(s)://server, sqlite:///file.db, or a "
                                               "directory (→ DIR/mlflow.db); default runs/mlflow.db")
    parser.add_argument("--optuna-storage", help="Optuna RDB URL (default sqlite:///runs/optuna.db)")
    parser.add_argument("--storage", help="where Ray keeps its results (default runs/ray)")
    parser.add_argument("--seed", type=int, help="sampler seed (default: derived from the search id)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="stop starting new trials after this many seconds")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="SEARCH_ID",
                        help="continue the latest search of this study (or the given one)")
    parser.add_argument("--reproduce", action="store_true",
                        help="run the study's published grid at the paper's settings instead of a search")
    parser.add_argument("--repeats", type=int, default=1,
                        help="with --reproduce: runs of each row with different train.seed")
    return parser


def read_config_file(path: Path) -> dict[str, Any]:
    """Config keys from YAML: flat (``mask.scheme: MS4``) or nested (``mask: {scheme: MS4}``)."""
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:  # one line: the problem and where, not PyYAML's multi-line report
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise UsageError(f"--config {path}: not valid YAML ({problem}{where})") from None
    if not isinstance(content, Mapping):
        raise UsageError(f"--config {path}: expected a mapping of config keys, got {type(content).__name__}")
    content = content.get("config", content)  # an export holds the config under 'config'
    if not isinstance(content, Mapping):
        raise UsageError(f"--config {path}: expected a mapping under 'config', got {type(content).__name__}")
    return _flatten(content)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_request(argv: list[str] | None = None) -> SearchRequest | str:
    """Parse and validate; returns the request, or 'list' / 'show:<name>' for the two listing modes.
    Raises UsageError on bad input (argparse itself exits 2 on unknown options)."""
    args = build_parser().parse_args(argv)
    if args.list:
        return "list"
    if not args.study:
        raise UsageError(f"no study given; known studies: {', '.join(list_studies())}")
    try:
        study = load_study(args.study)
    except UnknownStudyError as error:
        raise UsageError(str(error)) from None
    if args.show:
        return f"show:{study.name}"
    return _validate(args, study)


def _validate(args: argparse.Namespace, study: Study) -> SearchRequest:
    budget = args.budget or study.default_budget
    if budget not in study.budgets:
        raise UsageError(f"--budget {budget!r}: expected one of {', '.join(study.budgets)}")
    _check_counts(args)
    try:
        fixed = check_keys(read_config_file(args.config), study.fields) if args.config else {}
        for assignment in args.assignments:
            key, value = parse_assignment(assignment, study.fields)
            fixed[key] = value
        config = study.config_for(budget, fixed)  # every cross-key rule, before anything starts
        data = study.load_data(config)  # a user's files, read once here (DESIGN.md "Data on a cluster")
    except (ConfigError, ValueError) as error:
        raise UsageError(str(error)) from None
    return SearchRequest(
        study=study, budget=budget, trials=args.trials, fixed=fixed,
        max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, scheduler=args.scheduler, address=args.address,
        tracking_uri=args.tracking_uri, optuna_storage=args.optuna_storage, storage=args.storage,
        seed=args.seed, time_budget_s=args.time_budget, resume=args.resume, reproduce=args.reproduce,
        repeats=args.repeats, data=data,
    )


def _check_counts(args: argparse.Namespace) -> None:
    positive = {"--trials": args.trials, "--max-concurrent": args.max_concurrent,
                "--repeats": args.repeats, "--time-budget": args.time_budget}
    for flag, value in positive.items():
        if value is not None and value <= 0:
            raise UsageError(f"{flag} {value}: expected a positive number")
    if args.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial {args.cpus_per_trial}: expected a positive number")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial {args.gpus_per_trial}: expected 0 or more (fractions allowed)")
    if args.gpus_per_trial is not None and args.gpus_per_trial > 1 and not args.gpus_per_trial.is_integer():
        raise UsageError(f"--gpus-per-trial {args.gpus_per_trial}: above 1, expected a whole number")
    if args.repeats != 1 and not args.reproduce:
        raise UsageError("--repeats applies to --reproduce (a search's trials each run once)")
    if args.resume and args.reproduce:
        raise UsageError("--resume continues a search; it cannot be combined with --reproduce")
