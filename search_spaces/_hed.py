"""What both HED studies share: the task, its data tags and driver-side data, budgets' data sizes,
memory per trial, and the published tables (MODELS.md part B)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from models.hed_config import FIELDS, check_config

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


def memory_gb(config: Mapping[str, Any]) -> float:
    """The multi-scale ResNet trained full-batch keeps GBs of activations (7.1 GB on the paper's P100
    for 1581 spectra): reserve ~4 MB per training row for it, so two such trials do not share a node's
    memory blindly. Other models need far less than a node has."""
    if config["model.name"] != "msresnet":
        return 0.0
    anchors = sum(len(range(*map(int, config[key].split(":")))) for key in ("data.class0", "data.class1"))
    rows = anchors * (config["data.copies"] + 1) * config["data.points"] / 4023
    batch = config["train.batch_size"] or rows
    return round(min(rows, batch) * 0.004, 1)
