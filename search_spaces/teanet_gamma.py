"""How TeaNet's joint training should be set: the loss weight γ, both learning rates, the schedule,
the masked copies, the reconstruction loss, and joint against separate training (TeaNet Algorithm 1,
§5.4 and Table 5; MODELS.md A6).

γ is the paper's (the weight of the reconstruction loss; the repo's loss_ratio is 1 − γ). ``separate``
is Table 5's variant: the U-Net trained first without the classification loss, then frozen while the
classifier learns. Runs the leave-one-out protocol on generated few-shot spectra by default, any file
format with ``--set data.format=... --set data.path=...``. ``--reproduce``: Table 5's six rows
(joint / separate × 5, 10, 20 copies) beside the paper.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces._study import Budget, GridRow, Objective, SearchEnd, Study
from search_spaces._teanet import data_tags, load_data, log_best_confusion
from search_spaces.reference import read_reference
from search_spaces.teanet_baselines import _QUICK as _BASELINES_QUICK
from search_spaces.teanet_baselines import _SMOKE as _BASELINES_SMOKE
from trials.teanet_config import FIELDS, check_config

# The masked copies are searched here (5–20), so no budget sets them.
_SMOKE = {key: value for key, value in _BASELINES_SMOKE.items() if key != "mask.copies"}
_QUICK = {key: value for key, value in _BASELINES_QUICK.items() if key != "mask.copies"}
BUDGETS = {
    "smoke": Budget(trials=3, config=_SMOKE, description="seconds per trial: for tests"),
    "quick": Budget(trials=12, config=_QUICK, description="few-shot generated spectra, 3 repeats a trial"),
    "paper": Budget(trials=60, config={"eval.protocol": "leave_one_out"},
                    description="published sizes, 10 repeats: a GPU cluster"),
}


def define_space(trial: Any, fixed: Mapping[str, Any]) -> None:
    """γ, both learning rates, schedule, copies, reconstruction loss, joint / separate training; keys in
    ``fixed`` (--set) are not searched. The schedule and γ apply to joint training only: trained separately,
    the U-Net learns on L_rec alone and the frozen U-Net gives the classifier's loss no γ-weighted term to
    trade against (γ would only scale the cross-entropy, which Adam undoes)."""

    def suggest(kind: str, key: str, *args: Any, **kwargs: Any) -> Any:
        if key in fixed:
            return fixed[key]
        return getattr(trial, f"suggest_{kind}")(key, *args, **kwargs)

    training = suggest("categorical", "train.training", ("joint", "separate"))
    if training == "joint":
        suggest("categorical", "train.schedule", ("alternating", "joint"))
        suggest("float", "loss.gamma", 0.05, 0.95)
    suggest("float", "train.lr_unet", 1e-4, 1e-2, log=True)
    suggest("float", "train.lr_classifier", 1e-4, 1e-2, log=True)
    suggest("int", "mask.copies", 5, 20)
    suggest("categorical", "loss.recon", ("sse", "l2norm"))


_REFERENCE_COLUMNS = ("rruff_ir_mean", "rruff_ir_std", "usgs_mean", "usgs_std", "relab_mean", "relab_std")
# How the published code trained (MODELS.md A5): kept in every reproduction row.
_PAPER_QUIRKS = {"model.classifier_output": "softmax"}


def _table5_rows() -> tuple[GridRow, ...]:
    return tuple(
        GridRow(label=f"{row['training']} ×{row['copies']}",
                config={"train.training": row["training"], "mask.copies": int(row["copies"]),
                        **_PAPER_QUIRKS},
                reference={column: float(row[column]) for column in _REFERENCE_COLUMNS})
        for row in read_reference("teanet_table5_joint"))


def after_search(end: SearchEnd) -> None:
    """The best trial's confusion figure on the parent run."""
    log_best_confusion(end)


STUDY = Study(
    name="teanet_gamma",
    description=__doc__.split("\n\n")[0],
    task="teanet",
    fields=FIELDS,
    define_space=define_space,
    objective=Objective("val_accuracy_mean", "max",
                        note="mean validation accuracy over the leave-one-out repeats done; ASHA halves "
                             "trials between repeats"),
    budgets=BUDGETS,
    default_budget="quick",
    epochs_key="eval.repeats",  # the unit of a trial's progress under the protocol (trials.repeats)
    check_config=check_config,
    reproduction=_table5_rows(),
    reference_source="TeaNet Table 5 (accuracy %, mean ± std over 10 leave-one-out repeats; real IR "
                     "datasets, so compare trends, not values, with generated data)",
    reference_columns=_REFERENCE_COLUMNS,
    data_tags=data_tags,
    grace_fraction=1 / 3,
    result_columns=("accuracy_mean", "accuracy_std", "val_accuracy_std"),
    load_data=load_data,
    after_search=after_search,
)
