"""Masking schemes MS1–MS5 (spectra/masks.py): achieved fractions, segment layout, fill, seeding."""

import numpy as np
import pytest
from scipy import stats

from spectra.masks import SCHEMES, MaskScheme, _split_total, draw_masks, mask_spectra

L = 1024
DRAWS = 5000
ROUNDING = 0.5 / L  # a segment's length is round(τ·L) points


def _draw(scheme: MaskScheme, length: int = L, count: int = DRAWS, seed: int = 0) -> np.ndarray:
    return draw_masks(scheme, length, count, np.random.default_rng(seed))


def _runs(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices, starts and ends of every connected masked run (touching segments count as one)."""
    padded = np.pad(masks.astype(np.int8), ((0, 0), (1, 1)))
    steps = np.diff(padded, axis=1)
    rows, starts = np.nonzero(steps == 1)
    _, ends = np.nonzero(steps == -1)
    return rows, starts, ends


def test_mask_shape_and_dtype():
    for name in SCHEMES:
        masks = _draw(MaskScheme(name), count=7)
        assert masks.shape == (7, L) and masks.dtype == bool
        assert _draw(MaskScheme(name), count=0).shape == (0, L)


@pytest.mark.parametrize(("name", "a", "tau"), [("MS1", 0.0, 0.5), ("MS1", 0.5, 0.5), ("MS3", 0.0, 0.1)])
def test_fixed_fraction_is_exact(name, a, tau):
    masks = _draw(MaskScheme(name, a=a, tau=tau))
    np.testing.assert_array_equal(masks.sum(axis=1), round(tau * L))
    rows, starts, _ = _runs(masks)
    assert len(rows) == DRAWS  # one segment per mask
    if name == "MS1":
        assert (starts == round(a * L)).all()


def test_ms1_segment_is_clipped_at_the_end_only_by_rounding():
    masks = _draw(MaskScheme("MS1", a=0.5, tau=0.5), length=1023, count=3)
    _, starts, ends = _runs(masks)
    assert (starts == round(0.5 * 1023)).all() and (ends == 1023).all()


@pytest.mark.parametrize(
    ("name", "a", "low", "high"),
    [("MS2", 0.0, 0.3, 0.7), ("MS2", 0.5, 0.1, 0.5), ("MS4", 0.0, 0.3, 0.7), ("MS4", 0.0, 0.1, 0.9)],
)
def test_random_fraction_is_uniform_over_the_range(name, a, low, high):
    masks = _draw(MaskScheme(name, a=a, tau_low=low, tau_high=high))
    fractions = masks.mean(axis=1)
    assert fractions.min() >= low - ROUNDING and fractions.max() <= high + ROUNDING
    assert fractions.min() == pytest.approx(low, abs=0.01)
    assert fractions.max() == pytest.approx(high, abs=0.01)
    assert fractions.mean() == pytest.approx((low + high) / 2, abs=0.01)
    assert fractions.std() == pytest.approx((high - low) / np.sqrt(12), rel=0.05)  # std of a uniform
    rows, starts, _ = _runs(masks)
    assert len(rows) == DRAWS
    if name == "MS2":
        assert (starts == round(a * L)).all()


@pytest.mark.parametrize("name", ["MS3", "MS4"])
def test_random_start_covers_every_position_that_fits(name):
    masks = _draw(MaskScheme(name, tau=0.5))
    _, starts, ends = _runs(masks)
    assert starts.min() == 0 and ends.max() == L  # both ends of the spectrum are reached
    if name == "MS3":
        assert starts.max() == L - L // 2  # the last start at which 512 points fit
        assert starts.mean() == pytest.approx((L - L // 2) / 2, rel=0.03)


@pytest.mark.parametrize(
    ("k", "low", "high", "seg_low", "seg_high"),
    [(3, 0.3, 0.7, 0.1, 0.3), (2, 0.2, 0.4, 0.05, 0.3), (5, 0.3, 0.5, 0.05, 0.15)],
)
def test_ms5_segments_and_total(k, low, high, seg_low, seg_high):
    scheme = MaskScheme(
        "MS5", tau_low=low, tau_high=high, segments=k, segment_tau_low=seg_low, segment_tau_high=seg_high
    )
    masks = _draw(scheme)
    fractions = masks.mean(axis=1)
    # The total is round(T·L) points, so within half a point of the range; each segment within one.
    assert fractions.min() >= low - ROUNDING and fractions.max() <= high + ROUNDING
    rows, starts, ends = _runs(masks)
    # Exactly k runs per mask: overlapping or touching segments would have merged into fewer.
    np.testing.assert_array_equal(np.bincount(rows, minlength=DRAWS), k)
    sizes = (ends - starts) / L
    assert sizes.min() >= seg_low - 1 / L and sizes.max() <= seg_high + 1 / L
    assert starts.min() == 0 and ends.max() == L  # segments reach both ends, never beyond


def test_ms5_total_is_uniform_like_the_paper():
    """TeaNet §3.3: Σ τ_i ~ U(0.3, 0.7) with τ_i in (0.1, 0.3). Rejection sampling of independent τ_i
    (the old sampler) gave a total peaked near 0.6 with mean ≈ 0.57; KS p-value 0 over 5,000 draws."""
    scheme = MaskScheme("MS5", tau_low=0.3, tau_high=0.7, segments=3, segment_tau_low=0.1,
                        segment_tau_high=0.3)
    fractions = _draw(scheme).mean(axis=1)
    assert stats.kstest(fractions, stats.uniform(0.3, 0.4).cdf).pvalue > 0.01
    assert fractions.mean() == pytest.approx(0.5, abs=0.01)
    assert fractions.std() == pytest.approx(0.4 / np.sqrt(12), rel=0.05)


def test_ms5_total_is_uniform_over_what_the_segments_reach():
    # Two segments of at most 0.3 cannot total more than 0.6: T ~ U(0.3, 0.6), not U(0.3, 0.7).
    scheme = MaskScheme("MS5", tau_low=0.3, tau_high=0.7, segments=2, segment_tau_low=0.1,
                        segment_tau_high=0.3)
    fractions = _draw(scheme).mean(axis=1)
    assert stats.kstest(fractions, stats.uniform(0.3, 0.3).cdf).pvalue > 0.01
    assert fractions.max() <= 0.6 + ROUNDING


def test_split_total_keeps_every_fraction_in_range_and_sums_exactly():
    rng = np.random.default_rng(0)
    total = rng.uniform(0.3, 0.7, 10_000)
    parts = _split_total(total, 3, 0.1, 0.3, rng)
    np.testing.assert_allclose(parts.sum(axis=1), total, rtol=0, atol=1e-12)
    assert parts.min() >= 0.1 and parts.max() <= 0.3
    # Shuffled per row: no position takes the remainder more often than another.
    np.testing.assert_allclose(parts.mean(axis=0), total.mean() / 3, atol=0.003)


def test_ms5_draws_are_reproducible_from_the_seed():
    scheme = MaskScheme("MS5")
    first = _draw(scheme, count=1000, seed=7)
    np.testing.assert_array_equal(first, _draw(scheme, count=1000, seed=7))
    assert not np.array_equal(first, _draw(scheme, count=1000, seed=8))


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("length", [10, 37, 1023])
def test_segments_fit_in_short_spectra(name, length):
    scheme = MaskScheme(
        name, a=0.5, tau=0.5, tau_low=0.2, tau_high=0.5, segments=2, segment_tau_low=0.1, segment_tau_high=0.2
    )
    masks = _draw(scheme, length=length, count=500)
    rows, _, _ = _runs(masks)
    expected_runs = 2 if name == "MS5" else 1
    np.testing.assert_array_equal(np.bincount(rows, minlength=500), expected_runs)


@pytest.mark.parametrize("name", SCHEMES)
def test_same_seed_same_masks(name):
    scheme = MaskScheme(name)
    np.testing.assert_array_equal(_draw(scheme, count=50, seed=1), _draw(scheme, count=50, seed=1))
    if name in ("MS3", "MS4", "MS5"):
        assert not np.array_equal(_draw(scheme, count=50, seed=1), _draw(scheme, count=50, seed=2))


@pytest.mark.parametrize("fill", [-1.0, 0.0])
@pytest.mark.parametrize("name", SCHEMES)
def test_mask_spectra_fills_and_keeps_the_rest(name, fill):
    x = np.random.default_rng(0).uniform(1.0, 2.0, (6, 128))  # never equal to a fill value
    masked, source = mask_spectra(x, MaskScheme(name), copies=4, fill=fill, rng=np.random.default_rng(5))
    assert masked.shape == (24, 128) and masked.dtype == np.float32 and source.dtype == np.int64
    np.testing.assert_array_equal(source, np.repeat(np.arange(6), 4))  # copies of spectrum 0 first
    filled = masked == fill
    assert filled.any(axis=1).all()
    np.testing.assert_array_equal(masked[~filled], x[source].astype(np.float32)[~filled])
    assert (x >= 1.0).all()  # the input is not modified


def test_mask_spectra_rejects_bad_copies():
    with pytest.raises(ValueError, match="copies"):
        mask_spectra(np.zeros((2, 16)), MaskScheme(), copies=0, fill=-1.0, rng=np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scheme": "MS6"}, "scheme"),
        ({"tau": 0.0}, "tau"),
        ({"tau": 1.0}, "tau"),
        ({"tau_low": 0.0}, "tau_low"),
        ({"tau_high": 1.2}, "tau_high"),
        ({"tau_low": 0.7, "tau_high": 0.3}, "tau_high"),
        ({"segment_tau_low": 0.3, "segment_tau_high": 0.1}, "segment_tau_high"),
        ({"segment_tau_low": -0.1}, "segment_tau_low"),
        ({"a": 1.0}, "a"),
        ({"a": -0.1}, "a"),
        ({"scheme": "MS1", "a": 0.6, "tau": 0.5}, "tau"),
        ({"scheme": "MS2", "a": 0.5, "tau_high": 0.7}, "tau_high"),
        ({"segments": 0}, "segments"),
        ({"scheme": "MS5", "segments": 8}, "segments"),  # 8 × 0.1 > tau_high = 0.7
        ({"scheme": "MS5", "segments": 1, "tau_low": 0.35}, "segments"),  # 1 × 0.3 < tau_low
    ],
)
def test_invalid_scheme_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"MaskScheme.{field}: expected"):
        MaskScheme(**kwargs)


def test_ms5_impossible_at_this_length_raises():
    with pytest.raises(ValueError, match="segments"):  # 5 segments and 4 gaps need more than 8 points
        _draw(MaskScheme("MS5", segments=5, tau_low=0.3, tau_high=0.7, segment_tau_low=0.1), length=8)
    # Totals of 0.85–0.9 of 10 points leave no room for 3 segments of ≥ 2.4 points and 2 free points.
    tight = MaskScheme("MS5", tau_low=0.85, tau_high=0.9, segment_tau_low=0.24, segment_tau_high=0.3)
    with pytest.raises(ValueError, match="tau_low, tau_high"):
        _draw(tight, length=10, count=5)


def test_ms5_total_narrower_than_a_point_rounds_like_ms4():
    # [4.8, 4.96] points holds no whole number: the total rounds to 5 points, as MS4 would round τ.
    masks = _draw(MaskScheme("MS5", tau_low=0.3, tau_high=0.31), length=16, count=50)
    assert (masks.sum(axis=1) == 5).all()
