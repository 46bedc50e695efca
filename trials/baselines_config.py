"""The config of a teanet_baselines trial: TeaNet's keys (data, protocol, masks, networks, training)
plus ``method`` and each method's own settings (TeaNet Table 3; issue 9, part 3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trials.augment import AUGMENTED
from trials.config import Field
from trials.shallow import SHALLOW
from trials.teanet_config import FIELDS as TEANET_FIELDS
from trials.teanet_config import check_config as check_teanet_config

DEEP = ("teanet", "cnn_full", *AUGMENTED)
METHODS = (*DEEP, *SHALLOW)
_POSITIVE = {"low": 0.0, "low_open": True}

FIELDS: dict[str, Field] = {
    **TEANET_FIELDS,
    "method": Field("teanet", "the method of Table 3 this trial trains", choices=METHODS),
    "mixup.alpha": Field(0.2, "mixup: λ ~ Beta(α, α) [OURS default]", **_POSITIVE),
    "knn.k": Field(1, "knn: neighbours (at most the training spectra)", low=1, high=1000),
    "knn.weights": Field("uniform", "knn: vote weights", choices=("uniform", "distance")),
    "svm.c": Field(1.0, "svm_linear / svm_rbf: C", **_POSITIVE),
    "svm.gamma": Field(0.0, "svm_rbf: kernel γ; 0 = scikit-learn's 'scale' (1 / (points · variance))",
                       low=0.0),
    "forest.trees": Field(100, "random_forest: trees", low=1, high=10_000),
    "forest.max_depth": Field(0, "random_forest: depth limit; 0 = none", low=0, high=1000),
    "forest.max_features": Field("sqrt", "random_forest: features per split", choices=("sqrt", "log2")),
}


def teanet_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a config that a TeaNet trial takes."""
    return {key: config[key] for key in TEANET_FIELDS}


def check_config(config: Mapping[str, Any]) -> None:
    """TeaNet's rules: its networks and mask scheme serve every deep method (and are cheap to check)."""
    check_teanet_config(config)
