"""Which of the HED paper's seven 1-D classifiers, with which settings, finds the phase transition of a
time-ordered diffraction series with the highest classification confidence (Sun et al. 2021, Table 1;
MODELS.md B4-B6). The paper's protocol has no validation set: the search optimises the confidence over
the series itself (ties broken by the shorter training time), as the paper compares its models; read
it as model selection on the series, not an unbiased estimate. Runs on the simulated ramp by default,
or on a user's series with --set data.path=DIR.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search_spaces import _hed as hed_common
from search_spaces._study import Budget, GridRow, Study
from search_spaces.reference import read_reference
from trials.hed_config import HED_MODELS, PAPER_EPOCHS, paper_settings

# The paper's sequence blocks are copies + 1 rows (51 = 50 + 1); the smoke ramp has 2 copies.
_SMOKE_BLOCKS = {"model.lstm.sequence_length": 3, "model.transformer.columns": 3,
                 "model.sct_attention.columns": 3}

BUDGETS = {
    "smoke": Budget(trials=3, config={**hed_common.SMOKE_DATA, "train.epochs": 2, **_SMOKE_BLOCKS},
                    description="a small simulated ramp, 2 epochs: for tests"),
    "quick": Budget(trials=14, config={},
                    description="the full-size simulated ramp at the paper's sizes: minutes per trial"),
    "paper": Budget(trials=60, config={}, description="the paper's data: 1581 training rows"),
}

# Each model's own searched options (conditional on model.name): (kind, key suffix, choices/range).
_MODEL_SPACE: dict[str, list[tuple]] = {
    "fcnn_1d": [("cat", "widths", ("256,512,64", "128,256,64", "512,512,128")),
                ("float", "dropout", (0.0, 0.3))],
    "cnn": [("cat", "channels", ("64,64,4", "32,32,4", "64,64,8")), ("cat", "kernels", ("5,3,3", "7,5,3")),
            ("float", "dropout", (0.0, 0.3))],
    "msresnet": [("cat", "planes", ("64,64,8", "32,32,8", "16,16,4"))],
    "lstm": [("cat", "embed", (128, 256, 512)), ("cat", "hidden", (128, 256, 512)),
             ("int", "layers", (1, 2))],
    "transformer": [("cat", "d_model", (64, 128, 256)), ("cat", "heads", (4, 8)), ("int", "layers", (1, 3)),
                    ("cat", "ff", (128, 256, 512)), ("float", "dropout", (0.0, 0.2))],
    "sc_attention": [("cat", "heads", (2, 4, 8))],
    "sct_attention": [("cat", "heads", (2, 4, 8))],
}


def define_space(trial: Any, fixed: Mapping[str, Any]) -> None:
    """The model, then its own options; learning rate, weight decay and epochs around the paper's;
    noisy copies and noise scale."""
    def suggest(kind: str, key: str, domain: tuple, log: bool = False) -> Any:
        if key in fixed:
            return fixed[key]
        if kind == "cat":
            return trial.suggest_categorical(key, domain)
        if kind == "int":
            return trial.suggest_int(key, *domain, log=log)
        return trial.suggest_float(key, *domain, log=log)

    name = suggest("cat", "model.name", HED_MODELS)
    for kind, option, domain in _MODEL_SPACE[name]:
        suggest(kind, f"model.{name}.{option}", domain)
    paper_epochs = PAPER_EPOCHS[name]
    suggest("int", "train.epochs", (max(1, paper_epochs // 2), paper_epochs * 2), log=True)
    suggest("float", "train.lr", (1e-4, 2e-2), log=True)
    suggest("float", "train.weight_decay", (1e-6, 1e-3), log=True)
    suggest("cat", "data.copies", (5, 10, 25, 50))
    suggest("float", "data.noise_scale", (0.05, 0.3))


def _table1_rows() -> tuple[GridRow, ...]:
    published = {row["model"]: row for row in read_reference("hed_table1")}
    return tuple(GridRow(label=name, config=paper_settings(name),
                         reference={k: float(v) for k, v in published[name].items() if k != "model"})
                 for name in HED_MODELS)


STUDY = Study(
    name="hed_architectures",
    description=__doc__.split("\n\n")[0],
    **hed_common.study_settings(hed_common.STUDY_FIELDS, BUDGETS),
    define_space=define_space,
    reproduction=_table1_rows(),
    reference_source="HED paper Table 1 (Tesla P100; confidence and boundary on the real ramp)",
    reference_columns=("confidence", "boundary_lower", "boundary_upper", "train_time_s", "memory_gb",
                       "epochs", "trainable_params", "training_samples"),
    grace_fraction=1 / 9,  # rungs at 1/9 and 1/3 of each model's planned epochs
)
