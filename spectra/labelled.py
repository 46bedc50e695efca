"""Labelled spectra a user supplies, on one wavenumber axis (TeaNet's real datasets; MODELS.md A1).

Every reader of ``spectra.formats`` ends here: spectra (each on its own axis, or all on one), their raw
labels, and the file and row each came from. :func:`prepare` puts them on one axis (linear
interpolation onto ``length`` evenly spaced points over the range every spectrum covers; [OURS], the
repo has no resampling), scales each to [0, 1] (min–max; [OURS], masked points are −1, which only makes
sense for non-negative spectra) and turns the labels into class indices. Every error is one line naming
the file (and row), raised as :class:`DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spectra.errors import DataError
from spectra.lorentz import min_max_scale

RESAMPLING = ("linear", "none")
SCALING = ("minmax", "none")


@dataclass(frozen=True)
class LabelledSpectra:
    """Spectra on one axis with class indices; what the driver reads once and hands every trial."""

    x: np.ndarray  # float32 [N, L]
    y: np.ndarray  # int64 [N], indices into class_names
    class_names: tuple[str, ...]
    wavenumbers: np.ndarray  # float64 [L]
    source: str  # the file or folder read
    is_test: np.ndarray | None = None  # bool [N]: the file's own test split (TeaNet's .pth), else None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def length(self) -> int:
        return int(self.x.shape[1])


@dataclass
class RawSpectra:
    """What a reader found, before resampling: one axis for all (``axes`` of one row) or one per
    spectrum, a raw label per spectrum, and where each spectrum came from (``file:row``)."""

    axes: list[np.ndarray]  # one float64 [L] axis for all spectra, or one per spectrum
    values: list[np.ndarray]  # float64 [L_i] per spectrum
    labels: list[object]
    origins: list[str]
    source: str
    is_test: list[bool] | None = None
    axis_origins: list[str] = field(default_factory=list)  # where each axis came from (error messages)


def check_finite(values: np.ndarray, origin: str) -> None:
    """Refuse NaN or infinite values, naming the spectrum's file and row and the first bad point."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{origin}: NaN or infinite value at point {int(np.argmax(bad))}")


def label_text(label: object, origin: str) -> str:
    """A label as text: a string, or an integer (numpy or Python, or a float that is whole). Anything
    else (a fraction, a bool, NaN, an array) is refused."""
    if isinstance(label, (bool, np.bool_)):
        raise DataError(f"{origin}: label {label!r} is a boolean; expected a string or an integer")
    if isinstance(label, (str, np.str_)):
        text = str(label).strip()
        if not text:
            raise DataError(f"{origin}: empty label; expected a string or an integer")
        return text
    if isinstance(label, (int, np.integer)):
        return str(int(label))
    if isinstance(label, (float, np.floating)) and np.isfinite(label) and float(label).is_integer():
        return str(int(label))
    raise DataError(f"{origin}: label {label!r} is neither a string nor an integer")


def label_texts(labels: list[object], origins: list[str]) -> list[str]:
    """Every spectrum's label as text (:func:`label_text`)."""
    return [label_text(label, origin) for label, origin in zip(labels, origins, strict=True)]


def class_indices(labels: list[object], origins: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class index per spectrum and the class names, sorted (integers numerically, then strings)."""
    texts = label_texts(labels, origins)

    def order(name: str) -> tuple[int, int, str]:
        number = name.lstrip("-")
        return (0, int(name), "") if number.isdigit() else (1, 0, name)

    names = tuple(sorted(set(texts), key=order))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[t] for t in texts], dtype=np.int64), names


def common_range(raw: RawSpectra) -> tuple[float, float]:
    """The wavenumber range every spectrum covers; an error naming two files that do not overlap."""
    lows = [float(axis.min()) for axis in raw.axes]
    highs = [float(axis.max()) for axis in raw.axes]
    low, high = max(lows), min(highs)
    if low >= high:
        names = raw.axis_origins or raw.origins
        a, b = names[int(np.argmax(lows))], names[int(np.argmin(highs))]
        raise DataError(f"{a}: wavenumbers {max(lows):g}–{highs[int(np.argmax(lows))]:g} do not overlap "
                        f"{b}'s {lows[int(np.argmin(highs))]:g}–{min(highs):g}; expected one range that "
                        "every file covers")
    return low, high


def _resample(raw: RawSpectra, length: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = common_range(raw)
    grid = np.linspace(low, high, length)
    return _onto(raw, grid), grid


def _onto(raw: RawSpectra, grid: np.ndarray) -> np.ndarray:
    x = np.empty((len(raw.values), len(grid)), dtype=np.float64)
    for i, values in enumerate(raw.values):
        axis = raw.axes[0] if len(raw.axes) == 1 else raw.axes[i]
        order = np.argsort(axis, kind="stable")  # np.interp needs an increasing axis
        x[i] = np.interp(grid, axis[order], values[order])
    return x


def on_grid(raw: RawSpectra, grid: np.ndarray, scale: str = "minmax") -> tuple[np.ndarray, list[str]]:
    """New spectra as a trained model takes them: linearly interpolated onto its wavenumber ``grid``
    and scaled as its training data were; with their labels as text. Every spectrum must cover the
    grid (a model cannot classify what it never saw measured): else one line naming the file."""
    if not raw.values:
        raise DataError(f"{raw.source}: no spectra")
    low, high = float(grid.min()), float(grid.max())
    tolerance = 1e-6 * max(1.0, abs(high - low))
    for i, axis in enumerate(raw.axes):
        if axis.min() > low + tolerance or axis.max() < high - tolerance:
            where = (raw.axis_origins or raw.origins)[i]
            raise DataError(f"{where}: wavenumbers {axis.min():g}–{axis.max():g} do not cover the model's "
                            f"{low:g}–{high:g}; expected spectra measured over at least that range")
    x = _onto(raw, grid)
    scaled = min_max_scale(x) if scale == "minmax" else x
    return scaled.astype(np.float32), label_texts(raw.labels, raw.origins)


def _as_is(raw: RawSpectra) -> tuple[np.ndarray, np.ndarray]:
    """Without resampling, every spectrum must be on the first one's axis."""
    first = raw.axes[0]
    for i, axis in enumerate(raw.axes[1:], start=1):
        if len(axis) != len(first) or not np.allclose(axis, first):
            where = (raw.axis_origins or raw.origins)[i]
            raise DataError(f"{where}: its wavenumbers differ from the first file's ({len(axis)} vs "
                            f"{len(first)} points); use data.resample=linear")
    return np.stack(raw.values), first


def prepare(raw: RawSpectra, length: int, resample: str = "linear", scale: str = "minmax") -> LabelledSpectra:
    """One axis, scaled spectra and class indices (see the module's docstring)."""
    if not raw.values:
        raise DataError(f"{raw.source}: no spectra")
    y, names = class_indices(raw.labels, raw.origins)
    x, axis = _resample(raw, length) if resample == "linear" else _as_is(raw)
    if scale == "minmax":
        x = min_max_scale(x)
    is_test = None if raw.is_test is None else np.array(raw.is_test, dtype=bool)
    return LabelledSpectra(x.astype(np.float32), y, names, axis.astype(np.float64), raw.source, is_test)
