"""The paper's evaluation protocol (TeaNet §5.2; MODELS.md A1) and the splits a trial trains on.

``leave_one_out``: one randomly chosen spectrum per class is the test set, the rest is split into
training and validation; the experiment is repeated with different picks and the mean (± std) is
reported. A class with a single spectrum cannot be in it (its one spectrum would be its test and
nothing would be left to learn from): such classes are left out and the rest re-indexed.

The picks of repeat ``r`` depend on ``(eval.seed, r)`` only, so every trial of a study (every method
of teanet_baselines) is tested on the same spectra: differences between trials are paired.

The training / validation split is the repo's (``random``: a permutation, the first 80 % train, not
stratified) or, [OURS] for tuning on few-shot data, ``stratified`` (per class, at least one spectrum
stays in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectra.errors import DataError
from spectra.labelled import LabelledSpectra
from spectra.splits import SpectraSplits

VAL_SPLITS = ("random", "stratified")


@dataclass(frozen=True)
class ProtocolPool:
    """The spectra of the classes the protocol can use, re-indexed 0..K-1, and what was left out."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    left_out: tuple[str, ...]  # classes with a single spectrum

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        """One line for the terminal: how many classes remain, which were left out."""
        if not self.left_out:
            return f"{self.num_classes} classes, every one with at least two spectra"
        shown = ", ".join(self.left_out[:8]) + (", ..." if len(self.left_out) > 8 else "")
        return (f"{self.num_classes} classes remain; {len(self.left_out)} with a single spectrum left "
                f"out of the protocol: {shown}")


def protocol_pool(data: LabelledSpectra) -> ProtocolPool:
    """Drop the classes with one spectrum; refuse data with fewer than two classes left."""
    counts = np.bincount(data.y, minlength=data.num_classes)
    kept = np.flatnonzero(counts >= 2)
    left_out = tuple(data.class_names[i] for i in np.flatnonzero(counts == 1))
    if len(kept) < 2:
        raise DataError(f"{data.source}: {len(kept)} class(es) with at least two spectra; the leave-one-out "
                        "protocol needs two or more (one spectrum per class is tested, the rest trains)")
    remap = np.full(data.num_classes, -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    rows = remap[data.y] >= 0
    return ProtocolPool(data.x[rows], remap[data.y[rows]], tuple(data.class_names[i] for i in kept), left_out)


def _train_val(indices: np.ndarray, y: np.ndarray, rng: np.random.Generator, val_fraction: float,
               val_split: str) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into training and validation (see the module's docstring)."""
    if val_split == "random":  # the repo's dataset_divide(0.8): a permutation, not stratified
        order = rng.permutation(indices)
        n_train = min(len(order) - 1, max(1, round((1 - val_fraction) * len(order))))
        return np.sort(order[:n_train]), np.sort(order[n_train:])
    train, val = [], []
    for label in np.unique(y[indices]):
        members = rng.permutation(indices[y[indices] == label])
        n_val = min(len(members) - 1, round(val_fraction * len(members)))
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _splits(x: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, test: np.ndarray,
            num_classes: int) -> SpectraSplits:
    if len(val) == 0:
        raise DataError("too few spectra for a validation set: the protocol needs at least one "
                        "spectrum beyond each class's test pick")
    return SpectraSplits(x[train], y[train], x[val], y[val], x[test], y[test], num_classes)


def leave_one_out(pool: ProtocolPool, repeat: int, seed: int, val_fraction: float = 0.2,
                  val_split: str = "random") -> SpectraSplits:
    """Repeat ``repeat`` of the protocol: one test spectrum per class, the rest train / validation."""
    rng = np.random.default_rng([seed, repeat])
    test = np.array([rng.choice(np.flatnonzero(pool.y == label)) for label in range(pool.num_classes)])
    rest = np.setdiff1d(np.arange(len(pool.y)), test)
    train, val = _train_val(rest, pool.y, rng, val_fraction, val_split)
    return _splits(pool.x, pool.y, train, val, test, pool.num_classes)


def given_test(data: LabelledSpectra, seed: int, val_fraction: float = 0.2,
               val_split: str = "random") -> SpectraSplits:
    """The file's own test split (TeaNet's .pth ``test``) and the rest split train / validation."""
    if data.is_test is None:
        raise DataError(f"{data.source}: has no test split of its own; use eval.protocol=leave_one_out")
    rng = np.random.default_rng([seed, 0])
    rest = np.flatnonzero(~data.is_test)
    train, val = _train_val(rest, data.y, rng, val_fraction, val_split)
    return _splits(data.x, data.y, train, val, np.flatnonzero(data.is_test), data.num_classes)


def as_labelled(splits: SpectraSplits, source: str) -> LabelledSpectra:
    """Generated splits pooled into one labelled set (for the protocol on generated spectra)."""
    x = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    y = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    names = tuple(str(i) for i in range(splits.num_classes))
    return LabelledSpectra(x, y, names, np.arange(x.shape[1], dtype=np.float64), source)
