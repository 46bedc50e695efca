"""Spectra of neither class (issue 11): where a HED classifier's input lies far from everything its
two anchor sets span, its 0/1 label means nothing, and neither does a confidence counted over it.

The distance. A diffraction pattern of a mixture of phases is, to first order, the sum of the phases'
patterns weighted by their fractions: a spectrum of the two regimes an anchor pair stands for, or of
the reaction between them, is close to a **non-negative combination of the anchor spectra**. So the
distance of a spectrum x to the anchors A is the part of it no such mixture explains,

    d(x) = min_{w >= 0} ||x − Aᵀw|| / ||x||      (non-negative least squares; relative, so scale-free)

A third phase's peaks sit where no anchor has one: no mixture explains them, d is large.

Spectra are compared after summing them into ``bins`` equal bins of their points (default
:data:`DEFAULT_BINS`: 0.25° at the paper's 4023 points over 16°). At full resolution a narrow peak that
drifts with pressure by one peak width between two anchors is a new peak to the least squares, and the
per-point noise of a single spectrum is unexplained too. In units of the anchors' own leave-one-out
distance (below), at full resolution the third regime lies at 0.97–1.07 and the known regimes up to 0.78
(simulated ramp, 349 × 4023, anchors every 10 spectra in the first two regimes), or 1.25–1.46 against up
to 1.19 (384 × 2500 with issue 11's anchors): too close for a threshold. Summed into 64 bins the third
regime stands at 2.4–3.2 and 2.7–3.8, the known regimes at most 1.1 and 1.4 (the latter 30 spectra past
the last anchor). ``python benchmarks/bench_hed_ramps.py`` prints these figures.

The threshold. d is never 0 (noise, peaks drifting between two anchors), and how large it is for a
spectrum that *does* belong depends on the data. Each anchor's distance to the other anchors
(leave-one-out) is exactly that: a spectrum known to belong, explained by the rest. A spectrum is of
neither class when its distance exceeds ``factor`` times the largest leave-one-out distance: the edge
anchors' leave-one-out distance already covers one pool step of extrapolation, and ``factor`` (default
:data:`DEFAULT_FACTOR`, a config key, as is ``bins``) leaves room for spectra further from the anchors
(the figures above: known regimes ≤ 1.4×, the third regime ≥ 2.4× once it is established).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

DEFAULT_FACTOR = 1.5
DEFAULT_BINS = 64


@dataclass(frozen=True)
class NeitherClass:
    distance: np.ndarray  # float64 [M]: d(x) of each spectrum checked
    threshold: float  # factor × the largest leave-one-out distance of the anchors
    flagged: np.ndarray  # bool [M]: distance > threshold


def bin_points(spectra: np.ndarray, bins: int) -> np.ndarray:
    """Each spectrum [M, L] summed into ``bins`` equal bins of consecutive points [M, bins] (all the
    points when L <= bins)."""
    x = np.asarray(spectra, dtype=np.float64)
    if x.shape[-1] <= bins:
        return x
    edges = np.linspace(0, x.shape[-1], bins + 1).astype(int)
    return np.add.reduceat(x, edges[:-1], axis=-1)


def mixture_distance(spectra: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """d(x) of each row of ``spectra`` [M, L] to the non-negative combinations of ``anchors`` [n, L]."""
    basis = np.asarray(anchors, dtype=np.float64).T
    rows = np.asarray(spectra, dtype=np.float64)
    distance = np.empty(len(rows))
    for i, x in enumerate(rows):
        norm = np.linalg.norm(x)
        distance[i] = nnls(basis, x, maxiter=50 * basis.shape[1])[1] / norm if norm > 0 else 0.0
    return distance


def leave_one_out(anchors: np.ndarray) -> np.ndarray:
    """Each anchor's distance to the other anchors."""
    anchors = np.asarray(anchors, dtype=np.float64)
    keep = np.ones(len(anchors), dtype=bool)
    out = np.empty(len(anchors))
    for j in range(len(anchors)):
        keep[j] = False
        out[j] = mixture_distance(anchors[j:j + 1], anchors[keep])[0]
        keep[j] = True
    return out


def neither_class(spectra: np.ndarray, anchors: np.ndarray, factor: float = DEFAULT_FACTOR,
                  bins: int = DEFAULT_BINS) -> NeitherClass:
    """Which of ``spectra`` lie far from every mixture of ``anchors`` (both classes' anchor spectra,
    as the model sees them: cropped and baseline-corrected). Needs at least two anchors."""
    if len(anchors) < 2:
        raise ValueError(f"neither_class: expected at least 2 anchor spectra, got {len(anchors)}")
    anchors, spectra = bin_points(anchors, bins), bin_points(spectra, bins)
    threshold = factor * float(leave_one_out(anchors).max())
    distance = mixture_distance(spectra, anchors)
    return NeitherClass(distance, threshold, distance > threshold)


def neither_in_segments(spectra: np.ndarray, parts: list, factor: float = DEFAULT_FACTOR,
                        bins: int = DEFAULT_BINS) -> np.ndarray:
    """Whole-series indices (int64, sorted) of the spectra of neither class: each spectrum of a segment
    (spectra.selection.Segment) checked against that segment's two anchor sets."""
    flagged: set[int] = set()
    for segment in parts:
        anchors = spectra[np.r_[list(segment.class0), list(segment.class1)]]
        found = neither_class(spectra[segment.start:segment.stop], anchors, factor, bins)
        flagged.update(segment.start + int(i) for i in np.flatnonzero(found.flagged))
    return np.array(sorted(flagged), dtype=np.int64)
