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

from search_spaces import Study, UnknownStudyError, list_studies, load_study
from trials.config import ConfigError, check_keys, parse_assignment


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2, nothing created."""


@dataclass
class ConfigDocument:
    """One config of a --config file, and the trial it was exported from (an export's header)."""

    config: dict[str, Any]
    source: dict[str, str]  # study, search_id, trial, run_id when the file is an export, else empty


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
    # --config FILE --repeats N: the configs of the file (each with --set on top), each re-run N times
    reruns: list[ConfigDocument] | None = None
    rerun_source: dict[str, str] | None = None  # the export header of the config being re-run
    objectives: list[tuple[str, str]] | None = None  # --objectives: (metric, "max"|"min"), NSGA-II
    max_failures: int | None = None  # None: cluster.default_max_failures
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
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="YAML file of config keys to fix (e.g. an export); with --repeats N, the "
                             "configs to re-run (one or several documents)")
    parser.add_argument("--budget", help="smoke | quick | paper (default: the study's)")
    parser.add_argument("--trials", type=int, help="total trials of the search, failed ones included")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (default: CPUs / cpus-per-trial)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--gpus-per-trial", type=float,
                        help="fractions allowed, e.g. 0.25 (default: 1 when the cluster has GPUs)")
    parser.add_argument("--scheduler", choices=("asha", "fifo"),
                        help="asha stops poor trials early; fifo runs every trial to the end (default: the "
                             "study's, asha for most; fifo where every trial is a cell of a table)")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, a running cluster "
                                          "on this node, else a local one)")
    parser.add_argument("--tracking-uri", help="MLflow store: http(s)://server, sqlite:///file.db, or a "
                                               "directory (→ DIR/mlflow.db); default runs/mlflow.db")
    parser.add_argument("--optuna-storage", help="Optuna RDB URL (default sqlite:///runs/optuna.db)")
    parser.add_argument("--storage", help="where Ray keeps its results (default runs/ray)")
    parser.add_argument("--seed", type=int, help="sampler seed (default: derived from the search id)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="no trial starts after this many seconds; trials already running finish "
                             "and are recorded as usual (a trial still waiting for resources then is "
                             "recorded stop_reason=time_budget and runs on --resume)")
    parser.add_argument("--max-failures", type=int, metavar="N",
                        help="retry a trial that failed or whose node died up to N times, each from its "
                             "latest checkpoint (default: 3 on a cluster of several nodes or an "
                             "autoscaling one, where nodes can be lost; 0 on a local instance or a "
                             "single node, where a failure is the code's)")
    parser.add_argument("--objectives", metavar="METRIC:max|min,...",
                        help="a multi-objective search, e.g. val_accuracy:max,train_time_s:min: Optuna's "
                             "NSGA-II proposes the configs, every trial runs to the end (FIFO), export "
                             "writes the Pareto set")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="SEARCH_ID",
                        help="continue the latest search of this study (or the given one)")
    parser.add_argument("--reproduce", action="store_true",
                        help="run the study's published grid at the paper's settings instead of a search")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="with --reproduce: runs of each grid row; with --config FILE: re-run each "
                             "config of the file N times (kind=rerun), each repeat with its own train.seed, "
                             "mean and std of every metric on the parent run. Protocols that already repeat "
                             "inside a trial (TeaNet's leave-one-out) usually want --repeats 1")
    return parser


def read_config_file(path: Path) -> dict[str, Any]:
    """Config keys from YAML: flat (``mask.scheme: MS4``) or nested (``mask: {scheme: MS4}``); one
    document (a file of several is for re-runs: :func:`read_config_documents`)."""
    documents = read_config_documents(path)
    if len(documents) > 1:
        raise UsageError(f"--config {path}: holds {len(documents)} configs; re-run them with --repeats N, "
                         "or keep one to fix its keys in a search")
    return documents[0].config if documents else {}


def read_config_documents(path: Path) -> list[ConfigDocument]:
    """Every YAML document of the file (``export --top 3`` writes three, separated by ``---``)."""
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        contents = [c for c in yaml.safe_load_all(path.read_text()) if c is not None]
    except yaml.YAMLError as error:  # one line: the problem and where, not PyYAML's multi-line report
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        raise UsageError(f"--config {path}: not valid YAML ({problem}{where})") from None
    return [_config_document(path, content) for content in contents]


def _config_document(path: Path, content: Any) -> ConfigDocument:
    if not isinstance(content, Mapping):
        raise UsageError(f"--config {path}: expected a mapping of config keys, got {type(content).__name__}")
    config = content.get("config", content)  # an export holds the config under 'config'
    if not isinstance(config, Mapping):
        raise UsageError(f"--config {path}: expected a mapping under 'config', got {type(config).__name__}")
    source = {key: str(content[key]) for key in ("study", "search_id", "trial", "run_id")
              if "config" in content and key in content}
    return ConfigDocument(_flatten(config), source)


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
    rerun = args.config is not None and args.repeats is not None and not args.reproduce
    try:
        documents = read_config_documents(args.config) if rerun else []
        if rerun and not documents:
            raise UsageError(f"--config {args.config}: holds no config to re-run")
        fixed = check_keys(read_config_file(args.config), study.fields) if args.config and not rerun else {}
        typed = dict(parse_assignment(assignment, study.fields) for assignment in args.assignments)
        fixed.update(typed)
        # A config file may hold every key (an export's does): the study's rules on what was given
        # read what the user typed.
        study.check_given(typed)
        reruns = [_rerun_document(args.config, study, budget, document, fixed) for document in documents]
        config = study.config_for(budget, reruns[0].config if reruns else fixed)  # every cross-key rule
        data = study.load_data(config)  # a user's files, read once here (DESIGN.md "Data on a cluster")
    except (ConfigError, ValueError) as error:
        raise UsageError(str(error)) from None
    return SearchRequest(
        study=study, budget=budget, trials=args.trials, fixed=fixed,
        max_concurrent=args.max_concurrent, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, scheduler=args.scheduler or study.default_scheduler,
        address=args.address,
        tracking_uri=args.tracking_uri, optuna_storage=args.optuna_storage, storage=args.storage,
        seed=args.seed, time_budget_s=args.time_budget, resume=args.resume, reproduce=args.reproduce,
        repeats=args.repeats or 1, max_failures=args.max_failures, data=data, reruns=reruns or None,
        objectives=parse_objectives(args.objectives, study) if args.objectives else None,
    )


# What each task's trials report (trials/teanet.py, trials/hed.py and trials.contract): the metrics an
# --objectives may name.
RECORDED = {
    "teanet": ("train_loss", "val_loss", "epoch_val_accuracy", "recon_mse", "val_accuracy", "accuracy",
               "selected_epoch", "samples_per_s"),
    "hed": ("train_loss", "train_accuracy", "confidence", "boundary_lower", "boundary_upper",
            "boundary_error", "confidence_score"),
}


def recorded_metrics(study: Study) -> list[str]:
    from trials.contract import EVERY_REPORT

    names = (*EVERY_REPORT, study.objective.metric, *study.result_columns, *RECORDED.get(study.task, ()))
    return sorted(set(names))


def parse_objectives(text: str, study: Study) -> list[tuple[str, str]]:
    """``val_accuracy:max,train_time_s:min`` → [(metric, mode), ...], each a metric the study records."""
    objectives = []
    for part in text.split(","):
        metric, _, mode = part.strip().partition(":")
        if mode not in ("max", "min"):
            raise UsageError(f"--objectives {text}: expected METRIC:max or METRIC:min for each, got {part!r}")
        if metric not in recorded_metrics(study):
            raise UsageError(f"--objectives: study {study.name} does not record {metric!r}; it records "
                             f"{', '.join(recorded_metrics(study))}")
        objectives.append((metric, mode))
    if len(objectives) < 2 or len({m for m, _ in objectives}) < len(objectives):
        raise UsageError(f"--objectives {text}: expected two or more different metrics")
    return objectives


def _rerun_document(path: Path, study: Study, budget: str, document: ConfigDocument,
                    sets: Mapping[str, Any]) -> ConfigDocument:
    """A config to re-run, checked against the study's space (keys, types, cross-key rules) and with
    --set on top; a config exported from another study is refused."""
    exported_from = document.source.get("study")
    if exported_from and exported_from != study.name:
        raise UsageError(f"--config {path}: exported from study {exported_from!r}, not {study.name!r}")
    try:
        config = {**check_keys(document.config, study.fields), **sets}
        study.config_for(budget, config)
    except ConfigError as error:
        raise UsageError(f"--config {path}: {error}") from None
    return ConfigDocument(config, document.source)


def _check_counts(args: argparse.Namespace) -> None:
    positive = {"--trials": args.trials, "--max-concurrent": args.max_concurrent,
                "--repeats": args.repeats, "--time-budget": args.time_budget}
    for flag, value in positive.items():
        if value is not None and value <= 0:
            raise UsageError(f"{flag} {value}: expected a positive number")
    if args.max_failures is not None and args.max_failures < 0:
        raise UsageError(f"--max-failures {args.max_failures}: expected 0 or more")
    if args.cpus_per_trial <= 0:
        raise UsageError(f"--cpus-per-trial {args.cpus_per_trial}: expected a positive number")
    if args.gpus_per_trial is not None and args.gpus_per_trial < 0:
        raise UsageError(f"--gpus-per-trial {args.gpus_per_trial}: expected 0 or more (fractions allowed)")
    if args.gpus_per_trial is not None and args.gpus_per_trial > 1 and not args.gpus_per_trial.is_integer():
        raise UsageError(f"--gpus-per-trial {args.gpus_per_trial}: above 1, expected a whole number")
    if args.repeats is not None and not args.reproduce and args.config is None:
        raise UsageError("--repeats applies to --reproduce or to --config FILE (a search's trials each run "
                         "once)")
    if args.resume and args.reproduce:
        raise UsageError("--resume continues a search; it cannot be combined with --reproduce")
    if args.objectives and (args.reproduce or args.repeats is not None):
        raise UsageError("--objectives applies to a search, not to --reproduce or a re-run (--repeats)")
    if args.resume and args.repeats is not None:
        raise UsageError("--resume continues a search; it cannot be combined with --repeats")
