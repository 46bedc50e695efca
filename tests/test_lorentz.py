"""Synthetic Lorentz dataset (spectra/lorentz.py): shapes, class structure, ϑ, widths, determinism."""

import dataclasses

import numpy as np
import pytest

from spectra import lorentz
from spectra.lorentz import (
    LorentzSettings,
    class_peaks,
    draw_class,
    generate_lorentz,
    lorentz_curve,
    settings_hash,
    split_sizes,
)

SMALL = LorentzSettings(classes=6, samples_per_class=20, length=256, seed=3)
# Tall, narrow peaks: every peak stands alone, so heights can be read off the curve.
SHARP = LorentzSettings(classes=8, samples_per_class=20, length=1024, theta=10.0, fwhm_low=1.0, fwhm_high=1.0,
                        other_fwhm_low=1.0, other_fwhm_high=1.0)


def _class_rows(data, label: int) -> np.ndarray:
    """All spectra of one class, from the three splits."""
    splits = [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]
    return np.concatenate([x[y == label] for x, y in splits])


def test_shapes_dtypes_and_split_sizes():
    data = generate_lorentz(SMALL)
    assert data.num_classes == 6 and data.length == 256
    for name, per_class in (("train", 12), ("val", 4), ("test", 4)):
        x, y = getattr(data, f"x_{name}"), getattr(data, f"y_{name}")
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (6 * per_class, 256)
        np.testing.assert_array_equal(y, np.repeat(np.arange(6), per_class))  # ordered by class
        np.testing.assert_allclose(x.min(axis=1), 0.0)  # min-max scaled per spectrum
        np.testing.assert_allclose(x.max(axis=1), 1.0)


@pytest.mark.parametrize(("n", "sizes"), [(20, (12, 4, 4)), (10, (6, 2, 2)), (5, (3, 1, 1)), (3, (1, 1, 1))])
def test_split_sizes(n, sizes):
    assert split_sizes(n) == sizes


def test_characteristic_peaks_are_shared_within_a_class():
    data = generate_lorentz(SHARP)
    for label in range(SHARP.classes):
        rows = _class_rows(data, label)
        positions = class_peaks(SHARP, label).positions
        assert 1 <= len(positions) <= 3
        # ϑ = 10: the class's peaks are the tallest points of every one of its samples.
        assert (rows[:, positions] > 0.9).all()
        # ...and they are not in another class's samples.
        other = _class_rows(data, (label + 1) % SHARP.classes)
        assert np.median(other[:, positions]) < 0.2


def test_class_does_not_depend_on_class_count_or_sample_count():
    few = draw_class(SMALL, 2)
    more = draw_class(LorentzSettings(classes=50, samples_per_class=20, length=256, seed=3), 2)
    np.testing.assert_array_equal(few.spectra, more.spectra)
    bigger_class = class_peaks(LorentzSettings(classes=6, samples_per_class=40, length=256, seed=3), 2)
    np.testing.assert_array_equal(bigger_class.positions, few.characteristic.positions)
    np.testing.assert_array_equal(bigger_class.widths, few.characteristic.widths)


@pytest.mark.parametrize("theta", [10.0, 10 / 3, 1.0, 0.3, 0.1])
def test_theta_is_the_height_ratio_before_scaling(theta):
    settings = LorentzSettings(classes=2, samples_per_class=200, theta=theta, fwhm_low=1.0, fwhm_high=1.0,
                               other_fwhm_low=1.0, other_fwhm_high=1.0)
    draw = draw_class(settings, 0)
    characteristic = draw.spectra[:, draw.characteristic.positions]
    present = draw.others.amplitudes > 0
    rows = np.nonzero(present)[0]
    other = draw.spectra[rows, draw.others.positions[present]]
    assert present.sum(axis=1).min() >= 3 and present.sum(axis=1).max() <= 5
    # Medians: a rare peak landing on another one does not move them.
    assert np.median(characteristic) / np.median(other) == pytest.approx(theta, rel=0.02)


def test_lorentz_curve_height_and_fwhm():
    curve = lorentz_curve(101, np.array([50]), np.array([20.0]), np.array([3.0]))
    assert curve.shape == (101,)
    assert curve[50] == pytest.approx(3.0)
    assert curve[40] == pytest.approx(1.5) and curve[60] == pytest.approx(1.5)  # half height at ±FWHM/2
    batch = lorentz_curve(64, np.zeros((2, 3, 4)), np.ones((2, 3, 4)), np.ones((2, 3, 4)))
    assert batch.shape == (2, 3, 64)


def test_widths_scale_with_length_and_are_clipped_to_one_point():
    paper = class_peaks(LorentzSettings(length=1024, seed=7), 4)
    half = class_peaks(LorentzSettings(length=512, seed=7), 4)
    assert (paper.widths >= 50).all() and (paper.widths <= 100).all()
    np.testing.assert_allclose(half.widths, paper.widths / 2)
    tiny = draw_class(  # 0.125..0.25 points
        LorentzSettings(length=64, fwhm_low=2.0, fwhm_high=4.0, other_fwhm_low=2.0, other_fwhm_high=4.0), 0
    )
    assert (tiny.characteristic.widths == 1.0).all() and (tiny.others.widths == 1.0).all()


def test_characteristic_and_other_widths_have_their_own_ranges():
    # TeaNet §4.1 varies the characteristic peaks' FWHM; the other peaks keep their own range.
    settings = LorentzSettings(samples_per_class=50, fwhm_low=150.0, fwhm_high=200.0,
                               other_fwhm_low=0.5, other_fwhm_high=2.0)
    widths = np.concatenate([draw_class(settings, label).characteristic.widths for label in range(30)])
    others = np.concatenate([draw_class(settings, label).others.widths.ravel() for label in range(30)])
    assert widths.min() >= 150 and widths.max() <= 200
    assert widths.mean() == pytest.approx(175, abs=5)
    assert others.min() >= 1.0 and others.max() <= 2.0  # U(0.5, 2), clipped to one point
    assert np.median(others) == pytest.approx(1.25, abs=0.05)  # median of U(0.5, 2)
    # ...and the other way round: narrow characteristic peaks among wide ones.
    swapped = draw_class(dataclasses.replace(settings, fwhm_low=1.0, fwhm_high=2.0,
                                             other_fwhm_low=150.0, other_fwhm_high=200.0), 0)
    assert (swapped.characteristic.widths <= 2).all() and (swapped.others.widths >= 150).all()


def test_default_widths_are_the_same_for_both_kinds_of_peak():
    # The defaults keep one 50–100 range for every peak, as before other_fwhm_* existed.
    draw = draw_class(LorentzSettings(samples_per_class=200), 0)
    for widths in (draw.characteristic.widths, draw.others.widths):
        assert widths.min() >= 50 and widths.max() <= 100
    assert draw.others.widths.mean() == pytest.approx(75, abs=2)


def test_deterministic_per_seed():
    first, again = generate_lorentz(SMALL), generate_lorentz(SMALL)
    for name in ("x_train", "y_train", "x_val", "x_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    other = generate_lorentz(LorentzSettings(classes=6, samples_per_class=20, length=256, seed=4))
    assert not np.array_equal(first.x_train, other.x_train)


def test_settings_hash_is_short_stable_and_sensitive():
    digest = settings_hash(SMALL)
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert settings_hash(LorentzSettings(classes=6, samples_per_class=20, length=256, seed=3)) == digest
    assert settings_hash(LorentzSettings(classes=6, samples_per_class=20, length=256, seed=4)) != digest
    assert settings_hash(LorentzSettings(theta=1)) == settings_hash(LorentzSettings(theta=1.0))
    assert settings_hash(LorentzSettings(classes=np.int64(7))) == settings_hash(LorentzSettings(classes=7))
    base = settings_hash(LorentzSettings())
    assert settings_hash(LorentzSettings(other_fwhm_low=10.0)) != base
    assert settings_hash(LorentzSettings(other_fwhm_high=120.0)) != base
    assert settings_hash(LorentzSettings(fwhm_low=10.0)) != base


def test_settings_hash_names_the_generator_version(monkeypatch):
    # Version 2: fwhm_* no longer sets the other peaks, so equal settings may mean other data than v1.
    before = settings_hash(LorentzSettings())
    monkeypatch.setattr(lorentz, "_GENERATOR_VERSION", 1)
    assert settings_hash(LorentzSettings()) != before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("classes", 1),
        ("classes", 2.5),
        ("samples_per_class", 2),
        ("length", 4),
        ("theta", 0.0),
        ("theta", float("nan")),
        ("fwhm_low", -1.0),
        ("fwhm_high", 10.0),  # below the default fwhm_low = 50
        ("other_fwhm_low", -0.5),
        ("other_fwhm_low", -5.0),
        ("other_fwhm_low", float("inf")),
        ("other_fwhm_high", 10.0),  # below the default other_fwhm_low = 50
        ("other_fwhm_high", float("inf")),
        ("characteristic_min", 0),
        ("characteristic_max", 0),
        ("other_min", 0),
        ("other_max", 2),  # below the default other_min = 3
        ("seed", -1),
        ("samples_min", 2),
        ("samples_min", 21),  # above the default samples_per_class = 20
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"LorentzSettings.{field}: expected"):
        LorentzSettings(**{field: value})


def test_a_width_range_from_zero_draws_widths_of_at_least_one_point():
    """TeaNet §4.1.3's range [0, 50]: widths below a point are clipped to one point."""
    narrow = LorentzSettings(fwhm_low=0.0, fwhm_high=2.0, other_fwhm_low=0.0, other_fwhm_high=2.0)
    draw = draw_class(narrow, 0)
    assert (draw.characteristic.widths >= 1.0).all() and (draw.others.widths >= 1.0).all()


def test_few_shot_classes_vary_in_size_and_leave_the_default_data_alone():
    base = LorentzSettings(classes=6, samples_per_class=12)
    few = dataclasses.replace(base, samples_min=3)
    sizes = [len(draw_class(few, c).spectra) for c in range(6)]
    assert all(3 <= n <= 12 for n in sizes) and len(set(sizes)) > 1
    assert settings_hash(base) == "d285fb9132f3", "the digest these settings had before samples_min existed"
    assert settings_hash(few) != settings_hash(base)
    same = draw_class(base, 2)
    assert np.array_equal(same.spectra, draw_class(dataclasses.replace(base, samples_min=0), 2).spectra)
