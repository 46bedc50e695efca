"""Which random-masking scheme, masked fraction τ, fill value and joint-loss weight γ give the best
TeaNet classifier (TeaNet §3.3, Table 4; MODELS.md A2, A6).

Runs on the Lorentz-peak spectra of TeaNet §4.1 by default (MODELS.md A8), so it needs no data.
Each scheme's own parameters are searched only when that scheme is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces._study import Budget, GridRow, Objective, SearchEnd, Study
from search_spaces._teanet import QUICK_SIZES, SMOKE_SIZES, data_tags, load_data, log_best_confusion
from search_spaces.reference import read_reference
from spectra.masks import SCHEMES
from trials.teanet_config import FIELDS, check_config

# Sizes that cost, per budget. The TeaNet step at paper size is ~1 TFLOP (DESIGN.md "Known ground"),
# so smaller budgets shrink the data, the U-Net and the classifier; every value lands in the params.
_SMOKE = {"data.classes": 4, "data.samples_per_class": 10, "data.length": 64, "mask.copies": 2,
          "train.epochs": 2, **SMOKE_SIZES}
_QUICK = {"data.classes": 20, "data.samples_per_class": 30, "data.length": 256, "mask.copies": 5,
          "train.epochs": 30, "train.lr_unet": 2e-3, "train.lr_classifier": 1e-3, "train.lr_step": 4,
          **QUICK_SIZES}

BUDGETS = {
    "smoke": Budget(trials=3, config=_SMOKE, description="seconds per trial: for tests"),
    "quick": Budget(trials=12, config=_QUICK, description="about a minute per trial on a laptop CPU"),
    "paper": Budget(trials=60, config={}, description="the published sizes (300 epochs): a GPU cluster"),
}


def define_space(trial: Any, fixed: Mapping[str, Any]) -> None:
    """Define-by-run space over MS1–MS5, γ and the fill value; keys in ``fixed`` (--set) are not
    searched. The number of masked copies is left to the budget (it multiplies a trial's cost)."""

    def suggest_float(key: str, low: float, high: float, log: bool = False) -> None:
        if key not in fixed:
            trial.suggest_float(key, low, high, log=log)

    def suggest_int(key: str, low: int, high: int) -> None:
        if key not in fixed:
            trial.suggest_int(key, low, high)

    def suggest_categorical(key: str, choices: tuple) -> Any:
        return fixed[key] if key in fixed else trial.suggest_categorical(key, choices)

    scheme = suggest_categorical("mask.scheme", SCHEMES)
    if scheme in ("MS1", "MS2"):  # a fixed start; ranges keep a + τ ≤ 1
        suggest_float("mask.a", 0.0, 0.5)
    if scheme in ("MS1", "MS3"):
        suggest_float("mask.tau", 0.01, 0.5 if scheme == "MS1" else 0.99)
    if scheme in ("MS2", "MS4"):
        suggest_float("mask.tau_low", 0.01, 0.45 if scheme == "MS4" else 0.25)
        suggest_float("mask.tau_high", 0.5 if scheme == "MS4" else 0.26, 0.95 if scheme == "MS4" else 0.5)
    if scheme == "MS5":  # ranges chosen so every draw is feasible: k·seg_low ≤ tau_high, k·seg_high ≥ tau_low
        suggest_int("mask.segments", 2, 4)
        suggest_float("mask.segment_tau_low", 0.02, 0.1)
        suggest_float("mask.segment_tau_high", 0.2, 0.4)
        suggest_float("mask.tau_low", 0.2, 0.4)
        suggest_float("mask.tau_high", 0.5, 0.8)
    suggest_float("loss.gamma", 0.05, 0.95)
    suggest_categorical("mask.fill", (-1.0, 0.0))


# Table 4's rows, in the CSV's order. Open intervals stand in for the paper's b ∈ (0, 1) ranges.
_TABLE4_CONFIGS = [
    {"mask.scheme": "MS1", "mask.a": 0.0, "mask.tau": 0.5},
    {"mask.scheme": "MS1", "mask.a": 0.5, "mask.tau": 0.5},
    {"mask.scheme": "MS2", "mask.a": 0.0, "mask.tau_low": 0.01, "mask.tau_high": 0.99},
    {"mask.scheme": "MS2", "mask.a": 0.5, "mask.tau_low": 0.01, "mask.tau_high": 0.5},
    *({"mask.scheme": "MS3", "mask.tau": tau} for tau in (0.01, 0.1, 0.2, 0.5, 0.8, 0.9, 0.99)),
    {"mask.scheme": "MS4", "mask.tau_low": 0.1, "mask.tau_high": 0.9},
    {"mask.scheme": "MS4", "mask.tau_low": 0.3, "mask.tau_high": 0.7},
    {"mask.scheme": "MS5", "mask.segments": 3, "mask.segment_tau_low": 0.1, "mask.segment_tau_high": 0.3,
     "mask.tau_low": 0.3, "mask.tau_high": 0.7},
]
# How the published code trained, kept in every reproduction row (tuning keeps the fair "logits"):
# the USGS / synthetic-data LeNet ends in a softmax that is fed to cross-entropy (MODELS.md A5).
PAPER_QUIRKS = {"model.classifier_output": "softmax"}
_REFERENCE_COLUMNS = ("rruff_ir_mean", "rruff_ir_std", "usgs_mean", "usgs_std", "relab_mean", "relab_std")


def _table4_rows() -> tuple[GridRow, ...]:
    published = read_reference("teanet_table4_masks")
    if len(published) != len(_TABLE4_CONFIGS):
        raise ValueError("teanet_masks: Table 4 and its grid have different lengths")
    return tuple(
        GridRow(label=f"{row['scheme']} {row['setting']}", config={**config, **PAPER_QUIRKS},
                reference={column: float(row[column]) for column in _REFERENCE_COLUMNS})
        for row, config in zip(published, _TABLE4_CONFIGS, strict=True)
    )


def after_search(end: SearchEnd) -> None:
    """The best trial's confusion figure on the parent run."""
    log_best_confusion(end)


STUDY = Study(
    name="teanet_masks",
    description=__doc__.split("\n\n")[0],
    task="teanet",
    fields=FIELDS,
    define_space=define_space,
    objective=Objective("val_accuracy", "max",
                        note="validation accuracy of the classifier kept by lowest validation loss"),
    budgets=BUDGETS,
    default_budget="quick",
    epochs_key="train.epochs",
    check_config=check_config,
    reproduction=_table4_rows(),
    reference_source="TeaNet Table 4 (accuracy %, mean ± std over 10 leave-one-out repeats; real IR "
                     "datasets, so compare trends, not values, with generated data)",
    reference_columns=_REFERENCE_COLUMNS,
    data_tags=data_tags,
    grace_fraction=1 / 9,  # at 30 epochs: epoch 4, two rounds of the alternating U-Net / classifier
    load_data=load_data,
    after_search=after_search,
)
