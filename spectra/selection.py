"""Which part of a real ramp a HED study looks at (issue 11): a window of the series, K anchor ranges
in time order (K − 1 transitions), and a 2θ range.

* ``window`` ``"START:STOP"`` (stop excluded; ``""``: the whole series) is the spectra analysed. Every
  index stays that of the whole series: anchors, boundaries, the labels of the figure.
* ``anchors``: K ≥ 2 ranges ``"start:stop:step"`` in time order, none overlapping the next, all inside
  the window. Each consecutive pair k (ranges k and k+1, classes 0 and 1) is one transition to find, by
  the paper's method, over its *segment*: from the first anchor of range k to the last anchor of range
  k+1, except that the first segment starts at the window's start and the last ends at the window's
  end. With two ranges that is the whole window: the paper's case, unchanged. With more, each
  classifier sees only spectra of the two regimes it was trained on (and the reaction between them),
  never a third regime it would have to force into class 0 or 1.
* ``two_theta`` ``"LO:HI"`` (degrees, both ends inside the data's 2θ range) crops every spectrum before
  the baseline is removed: gasket and detector-edge peaks stay out of the model's input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectra.errors import DataError
from spectra.hed_data import parse_range

MIN_POINTS = 8  # a 2θ range keeping fewer points than this is a typo, not a crop


@dataclass(frozen=True)
class Segment:
    """One transition to find: its two anchor sets and the spectra it is classified over."""

    class0: range  # anchor spectrum indices (whole-series)
    class1: range
    start: int  # first spectrum of the segment (whole-series index)
    stop: int  # one past the last

    def as_range(self, what: str) -> str:
        """The anchors of ``what`` ("class0" or "class1") as ``"start:stop:step"``."""
        picked = getattr(self, what)
        return f"{picked.start}:{picked.stop}:{picked.step}"


def parse_window(text: str, spectra: int, key: str = "window") -> range:
    """The window ``"START:STOP"`` of a series of ``spectra`` spectra (``""``: all of them)."""
    if not text:
        return range(0, spectra)
    parts = text.split(":")
    try:
        start, stop = (int(part) for part in parts)
    except ValueError:
        start = stop = -1
    if len(parts) != 2 or start < 0 or stop < start + 2:
        raise DataError(f"{key}: expected START:STOP (integers, 0 <= START, at least 2 spectra), "
                        f"got {text!r}")
    if stop > spectra:
        raise DataError(f"{key}: {text!r} reaches past the series of {spectra} spectra (0..{spectra - 1}); "
                        f"expected STOP <= {spectra}")
    return range(start, stop)


def parse_anchors(text: str, key: str = "anchors") -> list[range]:
    """K ≥ 2 anchor ranges ``"a:b:c,d:e:f,..."``, each non-empty, in time order and not overlapping."""
    ranges = [parse_range(part.strip(), key) for part in text.split(",")]
    if len(ranges) < 2:
        raise DataError(f"{key}: expected at least 2 anchor ranges separated by commas, got {text!r}")
    for number, picked in enumerate(ranges, start=1):
        if len(picked) == 0:
            raise DataError(f"{key}: range {number} ({_text(picked)}) selects no spectrum")
    for number, (before, after) in enumerate(zip(ranges[:-1], ranges[1:], strict=True), start=1):
        if after[0] <= before[-1]:
            raise DataError(f"{key}: range {number + 1} ({_text(after)}) starts at {after[0]}, not after "
                            f"range {number} ({_text(before)}) ends at {before[-1]}; expected ranges in "
                            "time order, none overlapping the next")
    return ranges


def _text(picked: range) -> str:
    return f"{picked.start}:{picked.stop}:{picked.step}"


def check_inside(ranges: list[range], window: range, spectra: int, names: list[str]) -> None:
    """Every anchor inside the series and the window (indices are the whole series'); ``names`` says
    which key each range came from."""
    for picked, name in zip(ranges, names, strict=True):
        if picked[-1] >= spectra:
            raise DataError(f"{name}: {_text(picked)} reaches spectrum {picked[-1]}, but the series has "
                            f"{spectra} spectra (0..{spectra - 1})")
        if picked[0] < window.start or picked[-1] >= window.stop:
            raise DataError(f"{name}: {_text(picked)} reaches outside the window "
                            f"{window.start}:{window.stop} (spectra {window.start}..{window.stop - 1}); "
                            "expected every anchor inside it")


def segments(ranges: list[range], window: range) -> list[Segment]:
    """The K − 1 segments of K anchor ranges in a window (module docstring)."""
    found = []
    for k, (before, after) in enumerate(zip(ranges[:-1], ranges[1:], strict=True)):
        start = window.start if k == 0 else before[0]
        stop = window.stop if k == len(ranges) - 2 else after[-1] + 1
        found.append(Segment(before, after, start, stop))
    return found


def parse_two_theta(text: str, key: str = "two_theta") -> tuple[float, float] | None:
    """``"LO:HI"`` in degrees (``""``: no crop)."""
    if not text:
        return None
    parts = text.split(":")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        low = high = float("nan")
    if len(parts) != 2 or not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
        raise DataError(f"{key}: expected LO:HI in degrees (0 <= LO < HI), got {text!r}")
    return low, high


def crop_mask(two_theta: np.ndarray, text: str, key: str = "two_theta") -> np.ndarray | None:
    """Which points of the grid ``two_theta`` the range ``text`` keeps (None: every point). Both ends
    must lie inside the data's 2θ range, and it must keep at least MIN_POINTS points."""
    bounds = parse_two_theta(text, key)
    if bounds is None:
        return None
    low, high = bounds
    first, last = float(np.min(two_theta)), float(np.max(two_theta))
    if low < first or high > last:
        raise DataError(f"{key}: {text!r} reaches outside the data's 2θ range {first:.4g}..{last:.4g}°; "
                        "expected LO:HI inside it")
    keep = (two_theta >= low) & (two_theta <= high)
    if keep.sum() < MIN_POINTS:
        raise DataError(f"{key}: {text!r} keeps {int(keep.sum())} points of the data; expected at least "
                        f"{MIN_POINTS}")
    return keep


def simulated_grid(points: int, low: float, high: float) -> np.ndarray:
    """The simulator's 2θ grid (spectra.ramp: evenly spaced), to check a range before any data exists."""
    return np.linspace(low, high, points)
