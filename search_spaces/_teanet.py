"""What the TeaNet studies share on the driver: the network sizes of their smoke and quick budgets,
reading a user's spectra once (``load_data``), the data tags of a config, and the end-of-search figure of
the best trial (its confusion)."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from search_spaces._study import SearchEnd
from spectra.formats import load_spectra
from spectra.labelled import LabelledSpectra
from spectra.lorentz import settings_hash
from spectra.protocol import protocol_pool
from trials.teanet_config import lorentz_settings

# Network sizes of the budgets below paper size (the TeaNet step at paper size is ~1 TFLOP, DESIGN.md
# "Known ground"); each study adds its data, epochs and learning rates.
SMOKE_SIZES = {
    "model.unet_depth": 2, "model.unet_width": 1, "model.unet_base_channels": 4, "model.unet_kernel": 3,
    "model.classifier_layers": "4,M,8,M", "model.classifier_kernel": 7, "model.classifier_hidden": 32,
    "train.batch_size": 16,
}
QUICK_SIZES = {
    "model.unet_depth": 3, "model.unet_width": 2, "model.unet_base_channels": 8, "model.unet_kernel": 7,
    "model.classifier_layers": "8,8,M,16,16,M,32,32,M", "model.classifier_kernel": 11,
    "model.classifier_hidden": 256, "train.batch_size": 64,
}


def load_data(config: Mapping[str, Any]) -> LabelledSpectra | None:
    """The user's spectra (``data.format`` / ``data.path``), read and checked once by the driver; None
    for generated spectra. Bad files raise DataError (a ValueError) in one line naming file and row."""
    if config["data.format"] == "lorentz":
        return None
    data = load_spectra(config["data.format"], config["data.path"], config["data.length"],
                        config["data.resample"], config["data.scale"], config["data.label_column"],
                        config["data.class_key"])
    if data.length != config["data.length"]:  # data.resample=none keeps the files' axis
        raise ValueError(f"{data.source}: spectra of {data.length} points with data.resample=none; "
                         f"expected data.length={data.length} (or data.resample=linear)")
    said = f"data: {data.source}: {len(data.y)} spectra of {data.length} points, {data.num_classes} classes"
    if config["eval.protocol"] == "leave_one_out":
        said += "; leave-one-out: " + protocol_pool(data).describe()
    print(said)
    return data


def data_tags(config: Mapping[str, Any]) -> dict[str, str]:
    """The dataset a config names (the driver adds the hash of a user's files' content)."""
    if config["data.format"] != "lorentz":
        return {"dataset": f"{config['data.format']}:{config['data.path']}"}
    return {"dataset": "lorentz", "dataset_hash": settings_hash(lorentz_settings(config))}


def log_best_confusion(end: SearchEnd, label: str = "") -> None:
    """The confusion of the best trial's test predictions (its ``test_predictions.csv``), logged to the
    parent run as ``best_trial_confusion.png``."""
    if end.best is None or not end.best.get("run_id"):
        return
    from trials.figures import confusion_png

    with tempfile.TemporaryDirectory(prefix="best-trial-") as folder:
        path = end.client.download_artifacts(end.best["run_id"], "test_predictions.csv", folder)
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    if not rows:
        return
    title = f"best trial {end.best.get('trial', end.best['run_id'])}{label}: test predictions"
    png = confusion_png([r["true"] for r in rows], [r["predicted"] for r in rows], title)
    with tempfile.TemporaryDirectory(prefix="best-confusion-") as folder:
        target = os.path.join(folder, "best_trial_confusion.png")
        with open(target, "wb") as handle:
            handle.write(png)
        end.client.log_artifact(end.parent_run_id, target)


def log_table(end: SearchEnd, name: str, text: str) -> None:
    """A text table on the parent run (and printed)."""
    print(f"\n{text}")
    end.client.log_text(end.parent_run_id, text, name)


def csv_text(rows: list[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()
