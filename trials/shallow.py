"""The shallow baselines of Table 3 through scikit-learn (k-NN, linear and RBF SVMs, random forest) and
the correlation classifier (the class of the training spectrum with the highest Pearson correlation).

Each is fitted on the training spectra of a split; validation accuracy is what the searcher sees, test
accuracy is recorded. One call fits one split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from spectra.splits import SpectraSplits
from trials.repeats import RepeatResult

SHALLOW = ("knn", "svm_linear", "svm_rbf", "random_forest", "correlation")


class Correlation:
    """Nearest training spectrum by Pearson correlation (the correlation baseline of Table 3)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Correlation:
        self.x, self.y = _standardised(x), y
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        correlation = _standardised(x) @ self.x.T / x.shape[1]  # [n, n_train] Pearson r
        return self.y[np.argmax(correlation, axis=1)]


def _standardised(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    centred = x - x.mean(axis=1, keepdims=True)
    spread = x.std(axis=1, keepdims=True)
    return centred / np.where(spread > 0, spread, 1.0)


def make_model(config: Mapping[str, Any], n_train: int, seed: int) -> Any:
    """The scikit-learn estimator (or :class:`Correlation`) a config names."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    method = config["method"]
    if method == "knn":  # k cannot exceed the training set of a few-shot split
        return KNeighborsClassifier(n_neighbors=min(config["knn.k"], n_train), weights=config["knn.weights"])
    if method == "svm_linear":
        return SVC(kernel="linear", C=config["svm.c"])
    if method == "svm_rbf":
        return SVC(kernel="rbf", C=config["svm.c"], gamma=config["svm.gamma"] or "scale")
    if method == "random_forest":
        depth = config["forest.max_depth"] or None  # 0: grown until the leaves are pure
        return RandomForestClassifier(n_estimators=config["forest.trees"], max_depth=depth,
                                      max_features=config["forest.max_features"], random_state=seed, n_jobs=1)
    if method == "correlation":
        return Correlation()
    raise ValueError(f"method {method!r}: expected one of {', '.join(SHALLOW)}")


def fit_shallow(config: Mapping[str, Any], splits: SpectraSplits, repeat: int) -> RepeatResult:
    """Fit on the training spectra; accuracy on validation and test."""
    model = make_model(config, len(splits.y_train), config["train.seed"] * 1000 + repeat)
    model.fit(splits.x_train, splits.y_train)
    val_accuracy = float((model.predict(splits.x_val) == splits.y_val).mean())
    predicted = np.asarray(model.predict(splits.x_test), dtype=np.int64)
    # trainable_params 0: nothing is trained by gradient (the contract's key; not a network's size)
    return RepeatResult(val_accuracy, float((predicted == splits.y_test).mean()), splits.y_test, predicted,
                        {"trainable_params": 0})
