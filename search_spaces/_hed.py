"""What both HED studies share: the task, its config check, data tags and driver-side data, budgets'
data sizes, memory per trial, and the end-of-search outputs (MODELS.md part B; issue 11)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from search_spaces._hed_end import after_search
from search_spaces._study import Budget, Objective
from trials.config import ConfigError, Fields
from trials.hed_config import FIELDS, check_config, simulated_points, training_rows

TASK, STUDY_FIELDS = "hed", FIELDS

# A smaller simulated ramp for tests: the same physics, 80 spectra of 512 points, its own anchors.
SMOKE_DATA = {
    "data.spectra": 80, "data.points": 512, "data.sim_transition": 42, "data.pool_step": 5,
    "data.class0": "0:31:5", "data.class1": "50:76:5", "data.copies": 2,
}


def data_tags(config: Mapping[str, Any]) -> dict[str, str]:
    if config["data.path"]:
        return {"dataset": f"files:{config['data.path']}"}
    settings = [config[k] for k in ("data.spectra", "data.points", "data.sim_transition", "data.seed")]
    if config["data.sim_transition2"]:  # only then: a ramp without a third regime keeps its old hash
        settings.append(config["data.sim_transition2"])
    return {"dataset": "simulated_ramp",
            "dataset_hash": hashlib.sha1(repr(settings).encode()).hexdigest()[:12]}


def load_data(config: Mapping[str, Any]) -> Any:
    """A user's folder of .xy/.xye files or .7z archive of them, read once by the driver (None: the
    simulated ramp). Bad files raise ValueError with one line naming the file; the 2θ range, the window,
    the anchors and the model are checked against what was read, before anything is created."""
    if not config["data.path"]:
        return None
    from spectra.selection import crop_mask
    from spectra.xy import load_series
    from trials.hed_config import check_model, series_segments

    header = config["data.header_lines"]
    series = load_series(config["data.path"], header_lines=None if header < 0 else header)
    keep = crop_mask(series.two_theta, config["data.two_theta"], "config key 'data.two_theta'")
    series_segments(config, len(series.intensity))
    check_model(config, len(series.two_theta) if keep is None else int(keep.sum()))
    return series


# Resident memory per full-batch training row at 4023 points, measured on CPU with
# benchmarks/bench_hed_models.py (msresnet 8.1 GB, cnn 4.2 GB, sc/sct 3.9 GB for 1581 rows); the
# others stay under 0.3 GB.
_MB_PER_ROW = {"msresnet": 5.2, "cnn": 2.7, "sc_attention": 2.6, "sct_attention": 2.6}


def memory_gb(config: Mapping[str, Any]) -> float:
    """Memory to reserve for one trial, so Ray does not start two that together exhaust a node's
    memory (the full-batch ResNet needs 8 GB here, 7.1 GB on the paper's P100)."""
    per_row = _MB_PER_ROW.get(config["model.name"], 0.0)
    if not per_row:
        return 0.0
    rows = training_rows(config)
    batch = min(rows, config["train.batch_size"] or rows)
    points = simulated_points(config) if not config["data.path"] else 4023
    return round(batch * per_row * points / 4023 / 1024, 1)


def config_check(fields: Fields, budgets: Mapping[str, Budget]) -> Callable[[Mapping[str, Any]], None]:
    """The study's cross-key check. The class ranges its defaults and budgets fill in are not the
    user's: with data.anchors they simply do not apply; any other class range was given on the command
    line (or a --config file) together with data.anchors, which is an error."""
    defaults = (fields["data.class0"].default, fields["data.class1"].default)
    unset = {defaults, *((budget.config.get("data.class0", defaults[0]), budget.config.get("data.class1",
                                                                                           defaults[1]))
                         for budget in budgets.values())}
    return functools.partial(check_config, unset_class_ranges=frozenset(unset))


def check_given(given: Mapping[str, Any]) -> None:
    """data.anchors takes the place of the class ranges: the user gives one or the other (an empty
    data.anchors is the paper's case, the class ranges in force)."""
    both = [key for key in ("data.class0", "data.class1") if key in given]
    if given.get("data.anchors") and both:
        raise ConfigError(f"data.anchors given together with {' and '.join(both)}: data.anchors replaces "
                          "the class ranges (give one or the other)")


def study_settings(fields: Fields, budgets: Mapping[str, Budget]) -> dict[str, Any]:
    """The Study arguments both HED studies share: task, objective, checks, data, resources and the
    end-of-search outputs."""
    return {
        "task": TASK,
        "objective": Objective("confidence_score", "max",
                               note="confidence over the time series, ties broken by the shorter "
                                    "training time; the paper's protocol has no validation set"),
        "default_budget": "quick",
        "epochs_key": "train.epochs",
        "check_config": config_check(fields, budgets),
        "check_given": check_given,
        "fields": fields,
        "budgets": budgets,
        "data_tags": data_tags,
        "result_columns": ("confidence", "boundary_lower", "boundary_upper", "boundary_error",
                           "neither_class", "train_time_s"),
        "load_data": load_data,
        "memory_gb": memory_gb,
        "after_search": after_search,
    }
