"""Synthetic Lorentz dataset (spectra/lorentz.py): shapes, class structure, ϑ, widths, determinism."""

import numpy as np
import pytest

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
SHARP = LorentzSettings(classes=8, samples_per_class=20, length=1024, theta=10.0, fwhm_low=1.0, fwhm_high=1.0)


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
    settings = LorentzSettings(classes=2, samples_per_class=200, theta=theta, fwhm_low=1.0, fwhm_high=1.0)
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
    tiny = draw_class(LorentzSettings(length=64, fwhm_low=2.0, fwhm_high=4.0), 0)  # 0.125..0.25 points
    assert (tiny.characteristic.widths == 1.0).all() and (tiny.others.widths == 1.0).all()


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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("classes", 1),
        ("classes", 2.5),
        ("samples_per_class", 2),
        ("length", 4),
        ("theta", 0.0),
        ("theta", float("nan")),
        ("fwhm_low", 0.0),
        ("fwhm_high", 10.0),  # below the default fwhm_low = 50
        ("characteristic_min", 0),
        ("characteristic_max", 0),
        ("other_min", 0),
        ("other_max", 2),  # below the default other_min = 3
        ("seed", -1),
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"LorentzSettings.{field}: expected"):
        LorentzSettings(**{field: value})
