"""Synthetic spectra made of Lorentz peaks (TeaNet §4.1; MODELS.md A8).

Every class owns a few *characteristic* peaks that all its samples share (same position, width and
height ϑ); every sample adds a few *non-characteristic* peaks of height 1 at random. A classifier must
find the shared peaks among the distracting ones; ϑ and the peak widths set how hard that is.

Randomness is drawn per class from ``SeedSequence(seed, spawn_key=(class,))``, so class ``c`` is the same
whether 10 or 100 classes are generated, and its characteristic peaks are drawn before its samples, so
they do not depend on ``samples_per_class`` either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from spectra.splits import SpectraSplits

PAPER_LENGTH = 1024  # the paper's spectra have 1024 points; FWHM ranges are given on that axis
# Part of settings_hash: bump when the same settings would give other data. 2: fwhm_* sets only the
# characteristic peaks, other_fwhm_* the rest (same data at the defaults, other data off them).
_GENERATOR_VERSION = 2


@dataclass(frozen=True)
class LorentzSettings:
    """Size, difficulty (ϑ, peak widths) and seed of a synthetic Lorentz dataset.

    TeaNet §4.1 varies the FWHM range of the characteristic peaks (fwhm_*); the non-characteristic
    peaks' range (other_fwhm_*) is ours, its default the same 50–100 points."""

    classes: int = 100
    samples_per_class: int = 20
    length: int = 1024
    theta: float = 1.0  # ϑ = height of characteristic / height of non-characteristic peaks
    fwhm_low: float = 50.0  # FWHM range of characteristic peaks, in points of the paper's 1024-point axis
    fwhm_high: float = 100.0
    other_fwhm_low: float = 50.0  # FWHM range of non-characteristic peaks, same axis
    other_fwhm_high: float = 100.0
    characteristic_min: int = 1  # characteristic peaks per class ~ U{min..max}
    characteristic_max: int = 3
    other_min: int = 3  # non-characteristic peaks per sample ~ U{min..max}
    other_max: int = 5
    seed: int = 0
    # [OURS] few-shot data (issue 9's benchmark: 3–30 spectra per class): when > 0, class c has
    # U{samples_min..samples_per_class} spectra, drawn from a stream of its own (the rest stays as it was).
    samples_min: int = 0

    def __post_init__(self) -> None:
        for field, low in (("classes", 2), ("samples_per_class", 3), ("length", 8), ("seed", 0)):
            value = getattr(self, field)
            _require(_is_int(value) and value >= low, field, f"an integer >= {low}", value)
        _require(_is_int(self.samples_min) and (self.samples_min == 0 or 3 <= self.samples_min
                                                 <= self.samples_per_class), "samples_min",
                 "0, or an integer from 3 to samples_per_class", self.samples_min)
        _require(math.isfinite(self.theta) and self.theta > 0, "theta", "a number > 0", self.theta)
        for prefix in ("", "other_"):
            low, high = getattr(self, f"{prefix}fwhm_low"), getattr(self, f"{prefix}fwhm_high")
            # 0 allowed: widths are drawn then clipped to one point (the paper's range [0, 50])
            _require(0 <= low < math.inf, f"{prefix}fwhm_low", "a number >= 0", low)
            _require(low <= high < math.inf, f"{prefix}fwhm_high", f"a number >= {prefix}fwhm_low", high)
        for kind in ("characteristic", "other"):
            low, high = getattr(self, f"{kind}_min"), getattr(self, f"{kind}_max")
            _require(_is_int(low) and low >= 1, f"{kind}_min", "an integer >= 1", low)
            _require(_is_int(high) and high >= low, f"{kind}_max", f"an integer >= {kind}_min", high)


@dataclass(frozen=True)
class Peaks:
    """Lorentz peaks, each ``[..., K]``; a peak of amplitude 0 is padding (samples differ in peak count)."""

    positions: np.ndarray  # int64, in points
    widths: np.ndarray  # float64, FWHM in points of this spectrum's axis
    amplitudes: np.ndarray  # float64


@dataclass(frozen=True)
class ClassDraw:
    """Everything drawn for one class: its shared peaks, each sample's own peaks, the raw curves."""

    characteristic: Peaks  # [K_c]
    others: Peaks  # [samples_per_class, other_max]
    spectra: np.ndarray  # float64 [samples_per_class, length], before min-max scaling
    order: np.ndarray  # seeded shuffle of the samples, cut into train / val / test by split_sizes


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _require(ok: bool, field: str, expected: str, got: object) -> None:
    if not ok:
        raise ValueError(f"LorentzSettings.{field}: expected {expected}, got {got!r}")


def lorentz_curve(
    length: int, positions: np.ndarray, widths: np.ndarray, amplitudes: np.ndarray
) -> np.ndarray:
    """Sum of Lorentz peaks ``A / (1 + ((p - p0) / (FWHM / 2))²)`` at points ``p = 0..length-1``.

    The peak arrays share a shape ``[..., K]``; the result is float64 ``[..., length]``.
    """
    points = np.arange(length, dtype=np.float64)
    # A trailing axis for the points: [..., K, 1] against [length].
    centre, width, height = (np.asarray(a, np.float64)[..., None] for a in (positions, widths, amplitudes))
    offsets = (points - centre) / (width / 2.0)  # [..., K, length]
    return (height / (1.0 + offsets * offsets)).sum(axis=-2)


def split_sizes(n: int) -> tuple[int, int, int]:
    """Per-class 60/20/20 split sizes (12/4/4 for 20); validation and test get at least one sample."""
    n_val = max(1, round(0.2 * n))
    n_test = max(1, n - round(0.6 * n) - n_val)
    return n - n_val - n_test, n_val, n_test


def settings_hash(settings: LorentzSettings) -> str:
    """Short stable digest of the settings (and generator version), to record which data a run used."""
    # Cast by declared type, so theta=1 and theta=1.0 (or numpy integers) give the same digest.
    values = {
        f.name: (float if f.type == "float" else int)(getattr(settings, f.name))
        for f in dataclasses.fields(settings)
        if not (f.name == "samples_min" and settings.samples_min == 0)  # the digests of before it
    }
    payload = json.dumps({"generator": "lorentz", "version": _GENERATOR_VERSION, **values}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def _class_rng(settings: LorentzSettings, label: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(label,)))


def class_size(settings: LorentzSettings, label: int) -> int:
    """Spectra of class ``label``: samples_per_class, or U{samples_min..samples_per_class} (few-shot)."""
    if not settings.samples_min:
        return settings.samples_per_class
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(label, 1)))
    return int(rng.integers(settings.samples_min, settings.samples_per_class + 1))


def _draw_peaks(
    rng: np.random.Generator,
    settings: LorentzSettings,
    shape: tuple[int, ...],
    amplitude: float,
    fwhm: tuple[float, float],
) -> Peaks:
    """``shape`` peaks of one amplitude, FWHM ~ U(fwhm). Widths are drawn first and on the paper's axis,
    then scaled, so the same seed gives the same relative widths at any length."""
    scale = settings.length / PAPER_LENGTH
    widths = np.maximum(rng.uniform(*fwhm, shape) * scale, 1.0)
    positions = rng.integers(0, settings.length, shape, dtype=np.int64)
    return Peaks(positions, widths, np.full(shape, float(amplitude)))


def _draw_characteristic(rng: np.random.Generator, settings: LorentzSettings) -> Peaks:
    count = int(rng.integers(settings.characteristic_min, settings.characteristic_max + 1))
    return _draw_peaks(rng, settings, (count,), settings.theta, (settings.fwhm_low, settings.fwhm_high))


def class_peaks(settings: LorentzSettings, label: int) -> Peaks:
    """The characteristic peaks of class ``label`` (amplitude ϑ), shared by all of its samples."""
    return _draw_characteristic(_class_rng(settings, label), settings)


def draw_class(settings: LorentzSettings, label: int) -> ClassDraw:
    """Draw class ``label``: its characteristic peaks, then each sample's non-characteristic peaks."""
    rng = _class_rng(settings, label)
    characteristic = _draw_characteristic(rng, settings)

    # Samples differ in peak count: draw other_max peaks each and zero the amplitude of the extra ones.
    n, k = class_size(settings, label), settings.other_max
    counts = rng.integers(settings.other_min, settings.other_max + 1, n)
    others = _draw_peaks(rng, settings, (n, k), 1.0, (settings.other_fwhm_low, settings.other_fwhm_high))
    others = dataclasses.replace(others, amplitudes=(np.arange(k) < counts[:, None]).astype(np.float64))

    shared = lorentz_curve(settings.length, *_fields(characteristic))
    spectra = shared + lorentz_curve(settings.length, *_fields(others))
    return ClassDraw(characteristic, others, spectra, order=rng.permutation(n))


def _fields(peaks: Peaks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return peaks.positions, peaks.widths, peaks.amplitudes


def min_max_scale(x: np.ndarray) -> np.ndarray:
    """Scale each spectrum (last axis) to [0, 1]; a constant spectrum becomes all zeros."""
    low = x.min(axis=-1, keepdims=True)
    span = x.max(axis=-1, keepdims=True) - low
    return (x - low) / np.where(span > 0, span, 1.0)


def generate_lorentz(settings: LorentzSettings) -> SpectraSplits:
    """The whole dataset, split 60/20/20 within each class; each split is ordered by class."""
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for label in range(settings.classes):
        draw = draw_class(settings, label)
        n_train, n_val, _ = split_sizes(len(draw.spectra))
        shuffled = min_max_scale(draw.spectra)[draw.order]
        parts["train"].append(shuffled[:n_train])
        parts["val"].append(shuffled[n_train : n_train + n_val])
        parts["test"].append(shuffled[n_train + n_val :])

    arrays = {}
    for name, chunks in parts.items():
        arrays[f"x_{name}"] = np.concatenate(chunks).astype(np.float32)
        arrays[f"y_{name}"] = np.repeat(np.arange(settings.classes, dtype=np.int64), [len(c) for c in chunks])
    return SpectraSplits(**arrays, num_classes=settings.classes)
