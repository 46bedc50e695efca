"""TeaNet against the methods of its Table 3 on the same spectra and the same leave-one-out repeats:
TeaNet, CNN_Full, CNN_Partial, CutMix, MixUp, k-NN, linear and RBF SVMs, random forest and correlation.

``method`` is a grid dimension: each method gets an equal share of the trials (round robin), and TPE
searches that method's own settings within it. Every trial of a search is tested on the same picks
(``eval.seed``), so methods compare on the same spectra. Generated few-shot Lorentz spectra by default;
any of the file formats with ``--set data.format=... --set data.path=...``. The summary prints each
method's best trial beside Table 3's row (LTSA, CWGAN and DAGAN are not implemented: shown as such).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces._cells import dimension
from search_spaces._study import Budget, GridRow, Objective, SearchEnd, Study
from search_spaces._teanet import (
    QUICK_SIZES,
    SMOKE_SIZES,
    data_tags,
    load_data,
    log_best_confusion,
    log_table,
)
from search_spaces.reference import read_reference
from trials.baselines_config import FIELDS, METHODS, check_config

# Few-shot generated spectra (the 25 classes of 3–30 spectra at quick) under the protocol.
_SMOKE = {"data.classes": 4, "data.samples_per_class": 8, "data.samples_min": 3, "data.length": 64,
          "eval.protocol": "leave_one_out", "eval.repeats": 2, "mask.copies": 2, "train.epochs": 2,
          **SMOKE_SIZES}
_QUICK = {"data.classes": 25, "data.samples_per_class": 30, "data.samples_min": 3, "data.length": 256,
          "data.theta": 1.0, "eval.protocol": "leave_one_out", "eval.repeats": 3, "mask.copies": 5,
          "train.epochs": 15, "train.lr_step": 4, **QUICK_SIZES}
_PAPER = {"eval.protocol": "leave_one_out"}  # 10 repeats, published sizes

BUDGETS = {
    "smoke": Budget(trials=10, config=_SMOKE, description="seconds per trial, one per method: for tests"),
    "quick": Budget(trials=30, config=_QUICK, description="three trials per method, 3 repeats each"),
    "paper": Budget(trials=100, config=_PAPER, description="ten per method, 10 repeats: a GPU cluster"),
}
_LR = (1e-4, 1e-2)


def define_space(trial: Any, fixed: Mapping[str, Any]) -> None:
    """The method (a grid dimension), then its own settings (TPE); keys in ``fixed`` are not searched."""

    def suggest_float(key: str, low: float, high: float, log: bool = False) -> None:
        if key not in fixed:
            trial.suggest_float(key, low, high, log=log)

    def suggest_int(key: str, low: int, high: int) -> None:
        if key not in fixed:
            trial.suggest_int(key, low, high)

    def suggest_categorical(key: str, choices: tuple) -> None:
        if key not in fixed:
            trial.suggest_categorical(key, choices)

    method = dimension(trial, "method", METHODS, fixed)
    if method == "teanet":
        suggest_float("loss.gamma", 0.05, 0.95)
        suggest_float("train.lr_unet", *_LR, log=True)
    if method in ("teanet", "cnn_full", "cnn_partial", "cutmix", "mixup"):
        suggest_float("train.lr_classifier", *_LR, log=True)
    if method == "mixup":
        suggest_float("mixup.alpha", 0.1, 2.0, log=True)
    if method == "knn":
        suggest_int("knn.k", 1, 10)
        suggest_categorical("knn.weights", ("uniform", "distance"))
    if method in ("svm_linear", "svm_rbf"):
        suggest_float("svm.c", 1e-2, 1e3, log=True)
    if method == "svm_rbf":
        suggest_float("svm.gamma", 1e-4, 10.0, log=True)
    if method == "random_forest":
        suggest_int("forest.trees", 50, 500)
        suggest_int("forest.max_depth", 0, 30)
        suggest_categorical("forest.max_features", ("sqrt", "log2"))


_REFERENCE_COLUMNS = ("rruff_ir_mean", "rruff_ir_std", "usgs_mean", "usgs_std", "relab_mean", "relab_std")


def table3() -> dict[str, dict[str, float]]:
    """Table 3's rows by method name (accuracy %, mean and std over 10 leave-one-out repeats)."""
    return {row["method"]: {c: float(row[c]) for c in _REFERENCE_COLUMNS}
            for row in read_reference("teanet_table3_methods")}


def _published(paper: Mapping[str, float] | None) -> str:
    if paper is None:
        return "(not in Table 3)"
    datasets = ("rruff_ir", "usgs", "relab")
    return "".join(f"{paper[f'{d}_mean']:>8.2f} ± {paper[f'{d}_std']:<5.2f}" for d in datasets)


def methods_table(rows: list[Mapping[str, Any]]) -> str:
    """Each method's best trial (by val_accuracy_mean) beside Table 3's row, accuracies in %; ``repeats``
    is how many repeats that trial ran (fewer when the scheduler stopped it)."""
    published = table3()
    lines = [f"{'method':<14}{'trials':>7}{'repeats':>8}{'val acc %':>11}{'test acc % mean ± std':>24}   "
             f"Table 3:{'RRUFF-IR':>9}{'USGS':>15}{'ReLab':>15}"]
    for method in (*METHODS, *(m for m in published if m not in METHODS)):
        mine = [r for r in rows if r.get("param:method") == method and r.get("val_accuracy_mean") is not None]
        ref = _published(published.get(method))
        if not mine:
            state = "no result" if method in METHODS else "not implemented"
            lines.append(f"{method:<14}{0:>7}{'':>8}{'':>11}{state:>24}   {'':>8}{ref}")
            continue
        best = max(mine, key=lambda r: r["val_accuracy_mean"])
        test = f"{100 * best['accuracy_mean']:.2f} ± {100 * best.get('accuracy_std', float('nan')):.2f}"
        repeats = int(best.get("epochs") or 0)
        lines.append(f"{method:<14}{len(mine):>7}{repeats:>8}{100 * best['val_accuracy_mean']:>11.2f}"
                     f"{test:>24}   {'':>8}{ref}")
    return "\n".join(lines)


def after_search(end: SearchEnd) -> None:
    """The methods beside Table 3 (printed and logged as methods_vs_table3.txt), and the best trial's
    confusion."""
    title = ("Each method's best trial (by mean validation accuracy) beside TeaNet Table 3 (real IR "
             "datasets: compare the ranking, not the values)")
    log_table(end, "methods_vs_table3.txt", f"{title}\n{methods_table(end.rows)}")
    log_best_confusion(end)


STUDY = Study(
    name="teanet_baselines",
    description=__doc__.split("\n\n")[0],
    task="teanet_baselines",
    fields=FIELDS,
    define_space=define_space,
    objective=Objective("val_accuracy_mean", "max",
                        note="mean validation accuracy over the leave-one-out repeats done; with "
                             "--scheduler asha, trials are halved between repeats"),
    budgets=BUDGETS,
    default_budget="quick",
    epochs_key="eval.repeats",  # the unit of a trial's progress under the protocol (trials.repeats)
    check_config=check_config,
    reproduction=tuple(GridRow(label=m, config={"method": m}, reference=ref)
                       for m, ref in table3().items() if m in METHODS),
    reference_source="TeaNet Table 3 (accuracy %, mean ± std over 10 leave-one-out repeats; real IR "
                     "datasets, so compare rankings, not values, with generated data)",
    reference_columns=_REFERENCE_COLUMNS,
    data_tags=data_tags,
    # The summary is a table of every method: FIFO by default, so ASHA does not leave weak methods with one
    # repeat each (--scheduler asha halves between repeats: a repeat is the unit, first rung after one).
    default_scheduler="fifo",
    grace_fraction=1 / 3,
    result_columns=("accuracy_mean", "accuracy_std", "val_accuracy_std"),
    load_data=load_data,
    after_search=after_search,
)
