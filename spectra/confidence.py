"""Classification confidence and boundary of a time-ordered series (HED paper; MODELS.md B6).

The test spectra are in time order; a good classifier labels a leading run of class 0 and a trailing
run of class 1. Everything between the two runs is ambiguous, whatever it contains. Confidence is the
fraction of spectra outside that ambiguous interval. Our rule (MODELS.md B6 point 8, the paper's §4.2
text): confidence is 0 when no boundary is found (all one class, or no run at either end); the 1-D
notebooks' 0.5 is not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confidence:
    confidence: float  # 1 − N_f / N_t, or 0 when no boundary is found
    boundary_lower: int  # C0_upper: last index of the leading class-0 run
    boundary_upper: int  # C1_lower: first index of the trailing class-1 run
    ambiguous: int  # N_f, spectra between the two runs
    found: bool = True  # False: all one class, or no run at either end (confidence 0)

    def boundary_error(self, transition: int | None) -> int | None:
        """boundary_upper − the true transition index (DESIGN.md), when the data knows it and a
        boundary was found (otherwise there is no boundary to be wrong about: None, not a number)."""
        if transition is None or not self.found:
            return None
        return self.boundary_upper - transition


def _leading_zero_run_end(labels: np.ndarray) -> int:
    """C0_upper (B6 step 1): the last index j of the leading zeros, counted only while
    labels[j] and labels[j+1] are both 0, so a run of length one leaves it at 0."""
    upper = 0
    for j in range(len(labels) - 1):
        if labels[j] != 0 or labels[j + 1] != 0:
            break
        upper = j + 1
    return upper


def _trailing_one_run_start(labels: np.ndarray) -> int:
    """C1_lower (B6 step 2): scanning back from the end while labels[j] and labels[j−1] are 1."""
    lower = len(labels) - 1
    for j in range(len(labels) - 1, 0, -1):
        if labels[j] != 1 or labels[j - 1] != 1:
            break
        lower = j - 1
    return lower


def classification_confidence(labels: Sequence[int] | np.ndarray) -> Confidence:
    """Confidence and boundary of predicted 0/1 labels of time-ordered spectra (MODELS.md B6)."""
    labels = np.asarray(labels).astype(int).ravel()
    if len(labels) < 2 or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels: expected at least 2 predictions, each 0 or 1; got {labels.tolist()[:10]}")
    n = len(labels)
    lower, upper = _leading_zero_run_end(labels), _trailing_one_run_start(labels)
    ambiguous = upper - lower - 1
    no_boundary = lower == n - 1 or upper == 0 or (lower == 0 and upper == n - 1)
    confidence = 0.0 if no_boundary else 1.0 - ambiguous / n
    return Confidence(confidence, lower, upper, max(ambiguous, 0), found=not no_boundary)
