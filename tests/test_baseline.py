"""ALS baseline removal (spectra/baseline.py) against the paper's algorithm (MODELS.md B1)."""

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import spsolve

from spectra.baseline import als_baseline, remove_baseline

L = 4023  # the HED length: how flexible a given λ is depends on the number of points
X = np.linspace(0.0, 1.0, L)
PEAKS = (800, 1900, 3000)  # narrow peaks (FWHM 12 points, like HED) on a broad hump


def _paper_als(y: np.ndarray, lam: float, p: float, iterations: int) -> np.ndarray:
    """Eilers & Boelens as MODELS.md B1 states it: w = 1; repeat: solve (W + λDᵀD) z = Wy, then
    w = p where y > z, 1 − p where y < z, 0 where equal. A general sparse solve, fine at this size."""
    n = len(y)
    d = sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(n - 2, n))  # second differences
    penalty = lam * (d.T @ d)
    w = np.ones(n)
    for _ in range(iterations):
        z = spsolve((sparse.diags(w) + penalty).tocsc(), w * y)
        w = p * (y > z) + (1 - p) * (y < z)
    return z


def _spectrum(seed: int = 0, noise: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(measured, peaks only): a broad hump of height 5 plus peaks of height 1–2 and a little noise."""
    background = 5.0 * np.exp(-0.5 * ((X - 0.4) / 0.3) ** 2) + 2.0 * X
    peaks = sum(
        h / (1 + ((np.arange(L) - c) / 6.0) ** 2) for c, h in zip(PEAKS, (1.0, 2.0, 1.5), strict=True)
    )
    rng = np.random.default_rng(seed)
    return background + peaks + noise * rng.standard_normal(L), peaks


@pytest.mark.parametrize("iterations", [1, 2, 3, 10])
def test_matches_the_papers_algorithm(iterations):
    y, _ = _spectrum()
    expected = _paper_als(y, 1e5, 0.002, iterations)
    np.testing.assert_allclose(als_baseline(y, 1e5, 0.002, iterations), expected, rtol=0, atol=1e-7)


def test_iteration_count_matters_here():
    # So the comparison above would catch an extra or a missing solve.
    y, _ = _spectrum()
    assert np.abs(_paper_als(y, 1e5, 0.002, 2) - _paper_als(y, 1e5, 0.002, 3)).max() > 1e-3
    assert np.abs(als_baseline(y, iterations=2) - als_baseline(y, iterations=3)).max() > 1e-3


@pytest.mark.parametrize(("lam", "p"), [(1e3, 0.01), (1e7, 0.05)])
def test_matches_at_other_lam_and_p(lam, p):
    y, _ = _spectrum(seed=1)
    np.testing.assert_allclose(als_baseline(y, lam, p, 10), _paper_als(y, lam, p, 10), rtol=0, atol=1e-6)


def test_background_removed_and_peaks_survive():
    y, peaks = _spectrum()
    corrected = remove_baseline(y[None, :])[0]
    away = peaks < 0.02
    assert np.abs(np.median(corrected[away])) < 0.05  # the background was ~2–6
    for centre, height in zip(PEAKS, (1.0, 2.0, 1.5), strict=True):
        assert corrected[centre] == pytest.approx(height, rel=0.15)


def test_shapes_dtype_and_rows_independent():
    rows = np.stack([_spectrum(seed)[0] for seed in range(3)])
    corrected = remove_baseline(rows)
    assert corrected.shape == (3, L) and corrected.dtype == np.float32
    np.testing.assert_allclose(corrected[1], remove_baseline(rows[1]), atol=1e-6)  # [L] input works too


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lam": 0.0}, "lam > 0"),
        ({"p": 1.0}, "0 < p < 1"),
        ({"iterations": 0}, "iterations >= 1"),
        ({"iterations": 2.5}, "iterations >= 1"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        remove_baseline(np.ones((2, 10)), **kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match="spectrum 1 has NaN"):
        remove_baseline(np.array([[1.0, 2, 3, 4], [1, np.nan, 3, 4]]))
    with pytest.raises(ValueError, match="L >= 3"):
        remove_baseline(np.ones((2, 2)))
