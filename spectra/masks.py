"""Random masking of spectra, schemes MS1–MS5 (TeaNet §3.3, Table 4; MODELS.md A2).

A mask hides one segment of a spectrum (MS1–MS4) or several disjoint ones (MS5). Positions are
relative: a segment starts at ``a`` and covers a fraction ``τ`` of the spectrum. On a spectrum of ``L``
points a segment is ``max(1, round(τ·L))`` points long; a random start is a uniform integer in
``[0, L − len]`` (i.e. a ~ U(0, 1 − τ), so the segment always fits).

MS5 follows the paper's Σ τ_i ~ U(tau_low, tau_high): the total T is drawn uniformly first, then split
into k fractions τ_i, each in [segment_tau_low, segment_tau_high] (see ``_draw_ms5_lengths``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# TeaNet §3.3, Table 4: the five masking schemes.
SCHEMES = ("MS1", "MS2", "MS3", "MS4", "MS5")


# TeaNet §3.3, Table 4: where a mask starts (a) and how much it covers (τ), per scheme.
@dataclass(frozen=True)
class MaskScheme:
    """MS1: a, τ fixed. MS2: a fixed, τ random. MS3: a random, τ fixed. MS4: both random.
    MS5: ``segments`` disjoint segments whose total Σ τ_i ~ U(tau_low, tau_high), each τ_i in
    [segment_tau_low, segment_tau_high] (total drawn over the part of [tau_low, tau_high] that k such
    segments can reach). Random τ (MS2, MS4) is U(tau_low, tau_high)."""

    scheme: str = "MS4"
    a: float = 0.0  # relative start (MS1, MS2)
    tau: float = 0.5  # fixed masked fraction (MS1, MS3)
    tau_low: float = 0.3  # MS2/MS4: range of τ; MS5: range of the total Σ τ_i
    tau_high: float = 0.7
    segments: int = 3  # MS5: number of segments k
    segment_tau_low: float = 0.1  # MS5: range of each τ_i
    segment_tau_high: float = 0.3

    def __post_init__(self) -> None:
        _require(self.scheme in SCHEMES, "scheme", "one of " + ", ".join(SCHEMES), self.scheme)
        for field in ("tau", "tau_low", "tau_high", "segment_tau_low", "segment_tau_high"):
            value = getattr(self, field)
            _require(0 < value < 1, field, "a fraction in the open interval (0, 1)", value)
        _require(self.tau_low < self.tau_high, "tau_high", f"a value > tau_low={self.tau_low}", self.tau_high)
        low, high = self.segment_tau_low, self.segment_tau_high
        _require(low < high, "segment_tau_high", f"a value > segment_tau_low={low}", high)
        _require(0 <= self.a < 1, "a", "a start in [0, 1)", self.a)
        if self.scheme == "MS1":
            expected = f"a + tau <= 1 (a={self.a}), so the segment fits"
            _require(self.a + self.tau <= 1, "tau", expected, self.tau)
        if self.scheme == "MS2":
            expected = f"a + tau_high <= 1 (a={self.a}), so the segment fits"
            _require(self.a + self.tau_high <= 1, "tau_high", expected, self.tau_high)
        k = self.segments
        is_int = isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        _require(is_int and k >= 1, "segments", "an integer >= 1", k)
        if self.scheme == "MS5":
            # The k segment fractions must be able to add up to a total inside [tau_low, tau_high].
            reachable = k * low <= self.tau_high and k * high >= self.tau_low
            expected = f"k·segment_tau range [{k * low:g}, {k * high:g}] to meet [tau_low, tau_high]"
            _require(reachable, "segments", expected, k)


def _require(ok: bool, field: str, expected: str, got: object) -> None:
    if not ok:
        raise ValueError(f"MaskScheme.{field}: expected {expected}, got {got!r}")


def _points(fraction: np.ndarray | float, length: int) -> np.ndarray:
    """Segment length in points of a masked fraction: at least one point."""
    return np.maximum(1, np.rint(np.asarray(fraction) * length)).astype(np.int64)


def _segments_to_mask(starts: np.ndarray, lengths: np.ndarray, length: int) -> np.ndarray:
    """Boolean masks [count, length] from disjoint segments ``starts``/``lengths`` of shape [count, k].

    +1 at every start and −1 at every end, then a running sum: inside a segment it is 1, elsewhere 0.
    Segments of one row never share a start or an end, so plain fancy assignment is enough.
    """
    count = starts.shape[0]
    edges = np.zeros((count, length + 1), dtype=np.int8)
    rows = np.arange(count)[:, None]
    edges[rows, starts] = 1
    edges[rows, starts + lengths] = -1
    return np.cumsum(edges, axis=1, dtype=np.int8)[:, :length] > 0


# TeaNet §3.3, Table 4: draw masks of one scheme, True = masked.
def draw_masks(scheme: MaskScheme, length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` independent masks of ``length`` points as a bool array [count, length]."""
    if length < 1 or count < 0:
        raise ValueError(f"draw_masks: expected length >= 1 and count >= 0, got {length} and {count}")
    if scheme.scheme == "MS5":
        starts, lengths = _draw_ms5(scheme, length, count, rng)
        return _segments_to_mask(starts, lengths, length)

    if scheme.scheme in ("MS1", "MS3"):
        lengths = np.full(count, _points(scheme.tau, length))
    else:  # MS2, MS4
        lengths = _points(rng.uniform(scheme.tau_low, scheme.tau_high, count), length)
    lengths = np.minimum(lengths, length)

    if scheme.scheme in ("MS1", "MS2"):
        # a is fixed; a + τ <= 1 is validated, so clipping only trims a rounding overshoot at the end.
        start = min(int(np.rint(scheme.a * length)), length - 1)
        starts = np.full(count, start)
        lengths = np.minimum(lengths, length - start)
    else:  # MS3, MS4
        starts = rng.integers(0, length - lengths + 1)
    return _segments_to_mask(starts[:, None], lengths[:, None], length)


def _draw_ms5(
    scheme: MaskScheme, length: int, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Starts and lengths [count, k] of MS5 masks: k segments, no overlap, one free point between."""
    k = scheme.segments
    if k * _points(scheme.segment_tau_low, length) + (k - 1) > length:
        raise ValueError(f"MaskScheme.segments: {k} segments and their gaps do not fit in {length} points")
    lengths = _draw_ms5_lengths(scheme, length, count, rng)

    # Spread the free points over the k + 1 gaps (before, between and after the segments): k sorted
    # cut points in [0, free] split it into k + 1 parts. Between segments one extra point stays free.
    free = length - lengths.sum(axis=1) - (k - 1)
    cuts = np.sort(rng.integers(0, free[:, None] + 1, (count, k)), axis=1)
    gaps = np.diff(cuts, axis=1, prepend=0)  # gap before each segment
    gaps[:, 1:] += 1
    ends_before = np.cumsum(lengths, axis=1) - lengths  # points taken by earlier segments
    starts = np.cumsum(gaps, axis=1) + ends_before
    return starts, lengths


def _draw_ms5_lengths(scheme: MaskScheme, length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Segment lengths [count, k] in points: the total masked fraction T ~ U(low, high), then k segment
    fractions τ_i in [segment_tau_low, segment_tau_high] with Σ τ_i = T (TeaNet §3.3: Σ τ_i ~ U(0.3, 0.7)).

    ``[low, high]`` is [tau_low, tau_high] cut to what k segments can reach, [k·segment_tau_low,
    k·segment_tau_high], and to what fits with k − 1 free points between segments; when the cut bites,
    T is uniform over the smaller interval. Segments shorter than a point are raised to one point.
    Lengths are rounded cumulatively, so the total is round(T·L) and each segment is within one point of
    τ_i·L.
    """
    k = scheme.segments
    seg_low, seg_high = (max(tau, 1 / length) for tau in (scheme.segment_tau_low, scheme.segment_tau_high))
    low = max(scheme.tau_low, k * seg_low)
    high = min(scheme.tau_high, k * seg_high, (length - k + 1) / length)
    if low > high:
        raise ValueError(
            f"MaskScheme.segments: {k} segments in [segment_tau_low, segment_tau_high] = "
            f"[{scheme.segment_tau_low}, {scheme.segment_tau_high}] cannot total [tau_low, tau_high] = "
            f"[{scheme.tau_low}, {scheme.tau_high}] and fit in {length} points"
        )
    fractions = _split_total(rng.uniform(low, high, count), k, seg_low, seg_high, rng)
    # floor(x + 0.5), not rint: banker's ties could make a segment of ≥ 1 point round to 0 points.
    ends = np.floor(np.cumsum(fractions, axis=1) * length + 0.5).astype(np.int64)
    return np.diff(ends, axis=1, prepend=0)


def _split_total(
    total: np.ndarray, k: int, low: float, high: float, rng: np.random.Generator
) -> np.ndarray:
    """k fractions [count, k], each in [low, high], summing to ``total`` (with k·low ≤ total ≤ k·high).

    Each fraction is uniform over what still lets the rest reach the remainder; the last takes the
    remainder. The order is then shuffled per row, so no segment position is favoured.
    """
    remainder = total.copy()
    parts = np.empty((len(total), k))
    for i in range(k - 1):
        rest = k - 1 - i  # segments still to draw after this one
        lo = np.maximum(low, remainder - rest * high)
        hi = np.minimum(high, remainder - rest * low)
        parts[:, i] = rng.uniform(lo, np.maximum(lo, hi))
        remainder -= parts[:, i]
    parts[:, k - 1] = np.clip(remainder, low, high)  # clip only removes floating-point dust
    return rng.permuted(parts, axis=1)


# TeaNet §3.3: every spectrum copied and each copy masked on its own (the repo's mask_num copies).
def mask_spectra(
    x: np.ndarray, scheme: MaskScheme, copies: int, fill: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Masked copies float32 [N·copies, L] (copies of spectrum 0 first) and their source rows int64 in x.

    Masked points are set to ``fill`` (the repo used −1, the paper says zeros: the caller chooses).
    """
    if not isinstance(copies, (int, np.integer)) or copies < 1:
        raise ValueError(f"copies: expected an integer >= 1, got {copies!r}")
    if x.ndim != 2:
        raise ValueError(f"x: expected a 2-D array [N, length], got shape {list(x.shape)}")
    source = np.repeat(np.arange(x.shape[0], dtype=np.int64), copies)
    masked = np.asarray(x, dtype=np.float32)[source]  # fancy indexing copies, so x stays untouched
    masked[draw_masks(scheme, x.shape[1], len(source), rng)] = fill
    return masked, source
