"""Binned FCNN with automatic weighting ("WeightModel-FNN-DiffBin", MODELS.md B5.8), and the row layout
and majority vote that go with it.

The spectrum's points are split into ``bins`` contiguous bins of N2 = length // bins points (the
trailing length - bins * N2 points are dropped). One *row* holds, for one spectrum and one offset ix,
the (2-theta, intensity) point at index b * N2 + ix of every bin b: 2 * bins raw values. The model
classifies rows; a spectrum's label is the majority vote of its N2 rows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .hed_blocks import check_binary
from .registry import register_model


def check_bins(bins: int, length: int) -> None:
    if not 1 <= bins <= length:
        raise ValueError(f"bins must be between 1 and the spectrum length {length}, got {bins}")


def bin_rows(two_theta: np.ndarray, spectra: np.ndarray, bins: int) -> np.ndarray:
    """Rows of (2-theta, intensity) pairs, ``(n_spectra * N2, 2 * bins)`` float32 (B5.8).

    Row ``n * N2 + ix`` is spectrum ``n`` at offset ``ix``: columns ``2b, 2b + 1`` are ``two_theta`` and
    ``spectra[n]`` at index ``b * N2 + ix``. Rows go spectrum by spectrum, as the repo's.
    """
    spectra = np.asarray(spectra)
    two_theta = np.asarray(two_theta)
    if spectra.ndim != 2 or two_theta.shape != spectra.shape[1:]:
        raise ValueError(
            f"expected two_theta (L,) and spectra (N, L), got {two_theta.shape} and {spectra.shape}"
        )
    n_spectra, length = spectra.shape
    check_bins(bins, length)
    per_bin = length // bins  # N2
    used = bins * per_bin
    angles = two_theta[:used].reshape(bins, per_bin).T  # (N2, bins)
    values = spectra[:, :used].reshape(n_spectra, bins, per_bin).transpose(0, 2, 1)  # (N, N2, bins)
    pairs = np.stack([np.broadcast_to(angles, values.shape), values], axis=-1)  # (N, N2, bins, 2)
    return pairs.reshape(n_spectra * per_bin, 2 * bins).astype(np.float32)


def majority_vote(row_predictions: np.ndarray, n_spectra: int) -> np.ndarray:
    """Spectrum labels from row predictions laid out as :func:`bin_rows` (``n_spectra * N2`` values,
    probabilities or 0/1 labels; a row votes 1 iff its value > 0.5). Class 0 iff the number of 0-votes
    is > N2 // 2, else 1 (B5.8), so an even tie goes to class 1. Returns ``(n_spectra,)`` int64."""
    row_predictions = np.asarray(row_predictions).reshape(-1)
    if n_spectra < 1 or row_predictions.size % n_spectra:
        raise ValueError(f"{row_predictions.size} row predictions do not split into n_spectra={n_spectra}")
    votes = row_predictions.reshape(n_spectra, -1) > 0.5
    per_bin = votes.shape[1]
    zeros = per_bin - votes.sum(axis=1)
    return np.where(zeros > per_bin // 2, 0, 1).astype(np.int64)


class GroupedLinear(nn.Module):
    """``groups`` independent Linear(in -> out) layers applied to consecutive slices of a row, as one
    batched matmul (a grouped 1x1 convolution computes the same but ran ~10x slower on CPU here).
    Initialised as ``nn.Linear`` is: U(−1/√in, 1/√in) for weights and biases."""

    def __init__(self, groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.groups, self.in_features = groups, in_features
        bound = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(groups, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(groups, out_features).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (rows, groups·in) -> (rows, groups·out)
        grouped = x.view(len(x), self.groups, self.in_features).transpose(0, 1)  # (groups, rows, in)
        out = torch.baddbmm(self.bias.unsqueeze(1), grouped, self.weight)  # (groups, rows, out)
        return out.transpose(0, 1).reshape(len(x), -1)


class BinnedFCNN(nn.Module):
    """Per bin b a separate subnet on its 2-D point: Linear(2 -> hidden) -> BN -> ReLU -> Linear(hidden
    -> 2) -> BN -> Sigmoid; the 2 * bins outputs -> Linear(2 * bins -> 1) -> Sigmoid (the learned
    weighting). 1058 * bins + 1 parameters at hidden 150; nn.Linear's default init.

    The ``bins`` subnets run batched (:class:`GroupedLinear`): bin b sees exactly columns 2b, 2b + 1
    and has its own weights, so it is the same as ``bins`` separate Linear layers.
    """

    output = "sigmoid"

    def __init__(self, bins: int, hidden: int) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.bins = bins
        self.subnets = nn.Sequential(
            GroupedLinear(bins, 2, hidden),
            nn.BatchNorm1d(hidden * bins),
            nn.ReLU(inplace=True),
            GroupedLinear(bins, hidden, 2),
            nn.BatchNorm1d(2 * bins),
            nn.Sigmoid(),
        )
        self.weighting = nn.Sequential(nn.Linear(2 * bins, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        del test  # no sequences across spectra: a test batch is like any other (hed_blocks)
        if x.dim() != 2 or x.shape[-1] != 2 * self.bins:
            raise ValueError(
                f"expected rows of shape (rows, {2 * self.bins}) = (2-theta, intensity) per bin "
                f"(see models.binned.bin_rows), got {tuple(x.shape)}"
            )
        return self.weighting(self.subnets(x))


@register_model("binned_fcnn", kind="classifier")
def binned_fcnn(
    *, num_classes: int = 1, length: int = 4023, bins: int = 11, hidden: int = 150
) -> BinnedFCNN:
    """Binned FCNN with automatic weighting (MODELS.md B5.8); 1058 * bins + 1 parameters (11,639 at 11).

    Unlike every other model its input is rows of ``2 * bins`` features made by :func:`bin_rows`, not
    spectra; ``length`` (the spectrum length) only bounds ``bins``.
    """
    check_binary(num_classes)
    check_bins(bins, length)
    return BinnedFCNN(bins, hidden)
