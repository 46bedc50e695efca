"""What both HED studies share: the task, its data tags and driver-side data, budgets' data sizes,
memory per trial, and the published tables (MODELS.md part B)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from models.hed_config import FIELDS, check_config, training_rows
from search_spaces._study import Objective

TASK, STUDY_FIELDS, CHECK = "hed", FIELDS, check_config

# A smaller simulated ramp for tests: the same physics, 80 spectra of 512 points, its own anchors.
SMOKE_DATA = {
    "data.spectra": 80, "data.points": 512, "data.sim_transition": 42, "data.pool_step": 5,
    "data.class0": "0:31:5", "data.class1": "50:76:5", "data.copies": 2,
}


def data_tags(config: Mapping[str, Any]) -> dict[str, str]:
    if config["data.path"]:
        return {"dataset": f"files:{config['data.path']}"}
    settings = [config[k] for k in ("data.spectra", "data.points", "data.sim_transition", "data.seed")]
    return {"dataset": "simulated_ramp",
            "dataset_hash": hashlib.sha1(repr(settings).encode()).hexdigest()[:12]}


def load_data(config: Mapping[str, Any]) -> Any:
    """A user's folder of .xy/.xye files, read once by the driver (None: the simulated ramp). Bad files
    raise ValueError with one line naming the file; anchors and the model are checked against it."""
    if not config["data.path"]:
        return None
    from models.hed_config import check_model, training_settings
    from spectra.hed_data import anchor_indices
    from spectra.xy import load_xy_folder

    header = config["data.header_lines"]
    series = load_xy_folder(config["data.path"], header_lines=None if header < 0 else header)
    anchor_indices(training_settings(config), len(series.intensity))
    check_model(config, len(series.two_theta))
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
    points = config["data.points"] if not config["data.path"] else 4023
    return round(batch * per_row * points / 4023 / 1024, 1)


def study_settings() -> dict[str, Any]:
    """The Study arguments both HED studies share: task, objective, checks, data and resources."""
    return {
        "task": TASK,
        "objective": Objective("confidence_score", "max",
                               note="confidence over the time series, ties broken by the shorter "
                                    "training time; the paper's protocol has no validation set"),
        "default_budget": "quick",
        "epochs_key": "train.epochs",
        "check_config": CHECK,
        "data_tags": data_tags,
        "result_columns": ("confidence", "boundary_lower", "boundary_upper", "boundary_error",
                           "train_time_s"),
        "load_data": load_data,
        "memory_gb": memory_gb,
    }
