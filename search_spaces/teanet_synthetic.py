"""Where does TeaNet beat CNN_Full? Both over the ϑ × FWHM grid of synthetic Lorentz spectra
(TeaNet §4.1.3, Table 1 and Fig. 8; MODELS.md A8).

ϑ (characteristic / non-characteristic peak height) ∈ {10, 10/3, 1, 0.3, 0.1}; the characteristic
peaks' FWHM from [0, 50], [50, 100], [100, 150] or [150, 200] points. The paper writes the ranges as
"from [0, 50] to [150, 200]": the middle two are OUR reading. The default search and ``--reproduce`` are
the same 20 cells × 2 methods (each trial's number picks its cell), on the paper's split (60/20/20 per
class). The summary is the 5 × 4 table of both test accuracies, their difference and its standard error
(paired over the test spectra, which both methods share). The paper says: TeaNet ≈ CNN at large ϑ,
TeaNet ≫ CNN at medium or small ϑ with large FWHM.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from search_spaces._cells import grid_point
from search_spaces._study import Budget, GridRow, Objective, SearchEnd, Study
from search_spaces._teanet import QUICK_SIZES, SMOKE_SIZES, data_tags, log_best_confusion, log_table
from trials.baselines_config import FIELDS, check_config

THETAS = (10.0, 10 / 3, 1.0, 0.3, 0.1)
FWHMS = ((0.0, 50.0), (50.0, 100.0), (100.0, 150.0), (150.0, 200.0))
METHODS = ("teanet", "cnn_full")
AXES = ((("data.theta",), [(t,) for t in THETAS]), (("data.fwhm_low", "data.fwhm_high"), FWHMS),
        (("method",), [(m,) for m in METHODS]))
CELLS = len(THETAS) * len(FWHMS) * len(METHODS)

_SMOKE = {"data.classes": 4, "data.samples_per_class": 10, "data.length": 64, "mask.copies": 2,
          "train.epochs": 2, **SMOKE_SIZES}
_QUICK = {"data.classes": 20, "data.samples_per_class": 20, "data.length": 256, "mask.copies": 5,
          "train.epochs": 20, "train.lr_unet": 2e-3, "train.lr_classifier": 1e-3, "train.lr_step": 4,
          **QUICK_SIZES}
BUDGETS = {
    "smoke": Budget(trials=CELLS, config=_SMOKE, description="the 40 cells at seconds each: for tests"),
    "quick": Budget(trials=CELLS, config=_QUICK, description="the 40 cells, 20 classes × 20 spectra of 256"),
    "paper": Budget(trials=CELLS, config={}, description="100 classes × 20 spectra of 1024, 300 epochs"),
}


def define_space(trial: Any, fixed: Mapping[str, Any]) -> None:
    """Nothing is searched: the trial's number picks its cell (ϑ, FWHM range, method)."""
    grid_point(trial, AXES, fixed)


def _label(theta: float, fwhm: tuple[float, float], method: str) -> str:
    return f"ϑ={theta:.3g} FWHM {fwhm[0]:g}–{fwhm[1]:g} {method}"


REPRODUCTION = tuple(
    GridRow(label=_label(theta, fwhm, method),
            config={"data.theta": theta, "data.fwhm_low": fwhm[0], "data.fwhm_high": fwhm[1],
                    "method": method})
    for theta in THETAS for fwhm in FWHMS for method in METHODS)


def _correct(client: Any, run_id: str) -> np.ndarray | None:
    """1/0 per test spectrum of a trial (its test_predictions.csv, in the split's order)."""
    with tempfile.TemporaryDirectory(prefix="synthetic-") as folder:
        try:
            path = client.download_artifacts(run_id, "test_predictions.csv", folder)
        except Exception:  # noqa: BLE001  (a failed trial has none: its cell shows no difference)
            return None
        with open(path, newline="") as handle:
            return np.array([row["true"] == row["predicted"] for row in csv.DictReader(handle)], dtype=float)


def _cell(row: Mapping[str, Any]) -> tuple[float, float, str] | None:
    try:
        return float(row["param:data.theta"]), float(row["param:data.fwhm_low"]), row["param:method"]
    except (KeyError, TypeError, ValueError):
        return None


def grid_table(cells: Mapping[tuple[float, float, str], list[np.ndarray]]) -> str:
    """The 5 × 4 table: TeaNet and CNN_Full test accuracy (%), their difference and its standard error,
    paired over the test spectra (each method's correctness averaged over its trials of the cell)."""
    header = f"{'ϑ':>6} {'FWHM':>9} {'TeaNet %':>9} {'CNN_Full %':>11} {'diff %':>8} {'± s.e.':>7} {'n':>5}"
    lines = [header]
    for theta in THETAS:
        for low, high in FWHMS:
            found = [cells.get((round(theta, 6), low, m)) for m in METHODS]
            if not all(found):
                lines.append(f"{theta:>6.3g} {f'{low:g}–{high:g}':>9} {'(missing)':>9}")
                continue
            teanet, cnn = (np.mean(np.stack(runs), axis=0) for runs in found)
            diff = teanet - cnn
            se = diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
            lines.append(f"{theta:>6.3g} {f'{low:g}–{high:g}':>9} {100 * teanet.mean():>9.2f} "
                         f"{100 * cnn.mean():>11.2f} {100 * diff.mean():>8.2f} {100 * se:>7.2f} "
                         f"{len(diff):>5}")
    return "\n".join(lines)


def after_search(end: SearchEnd) -> None:
    """Read every trial's test predictions and print / log the 5 × 4 table (synthetic_grid.txt)."""
    cells: dict[tuple[float, float, str], list[np.ndarray]] = {}
    for row in end.rows:
        cell = _cell(row)
        correct = _correct(end.client, row["run_id"]) if cell else None
        if cell is not None and correct is not None and len(correct):
            cells.setdefault((round(cell[0], 6), cell[1], cell[2]), []).append(correct)
    title = ("TeaNet against CNN_Full over ϑ × FWHM (test accuracy %; diff = TeaNet − CNN_Full, standard "
             "error paired over the n test spectra). Paper: ≈ at large ϑ, TeaNet ≫ CNN at medium/small ϑ "
             "with large FWHM.")
    log_table(end, "synthetic_grid.txt", f"{title}\n{grid_table(cells)}")
    log_best_confusion(end)


STUDY = Study(
    name="teanet_synthetic",
    description=__doc__.split("\n\n")[0],
    task="teanet_baselines",
    fields=FIELDS,
    define_space=define_space,
    objective=Objective("val_accuracy", "max", note="validation accuracy (60/20/20 split); nothing is "
                        "searched, the trial number picks the cell"),
    budgets=BUDGETS,
    default_budget="quick",
    epochs_key="train.epochs",
    check_config=check_config,
    reproduction=REPRODUCTION,
    reference_source="TeaNet §4.1.3 (Table 1, Fig. 8): qualitative only, no table of values",
    data_tags=data_tags,
    # A cell is a measurement, not a candidate: every cell trains its planned epochs. FIFO by default; with
    # --scheduler asha, its only rung at the very end stops nothing either.
    default_scheduler="fifo",
    grace_fraction=0.999,
    result_columns=("accuracy",),
    after_search=after_search,
)
