"""The simulated compression ramp (spectra/ramp.py): shapes, seeding, physics, gradual transition."""

import numpy as np
import pytest

from spectra.baseline import remove_baseline
from spectra.ramp import RampSettings, simulate_ramp

QUIET = {"noise": 0.0, "counting": 0.0, "texture": 0.0}  # the bare model: no random part


@pytest.fixture(scope="module")
def paper_ramp():
    """The default ramp (paper size) and its baseline-corrected spectra."""
    ramp = simulate_ramp(RampSettings())
    return ramp, remove_baseline(ramp.intensity)


def test_shapes_dtypes_and_transition(paper_ramp):
    ramp, _ = paper_ramp
    assert ramp.intensity.shape == (349, 4023) and ramp.intensity.dtype == np.float32
    assert ramp.two_theta.shape == (4023,) and ramp.two_theta.dtype == np.float64
    assert ramp.two_theta[0] == pytest.approx(9.56) and ramp.two_theta[-1] == pytest.approx(25.55)
    assert ramp.transition == 185 and np.isfinite(ramp.intensity).all()
    # `transition` is the first spectrum where the new phase is the majority.
    assert ramp.new_phase[184] < 0.5 <= ramp.new_phase[185]
    assert np.all(np.diff(ramp.pressure) > 0)


def test_deterministic_per_seed():
    small = RampSettings(spectra=40, points=500, transition=20)
    first, again = simulate_ramp(small), simulate_ramp(small)
    np.testing.assert_array_equal(first.intensity, again.intensity)
    other = simulate_ramp(RampSettings(spectra=40, points=500, transition=20, seed=1))
    assert not np.array_equal(first.intensity, other.intensity)


@pytest.mark.parametrize("window", [(11.2, 12.8), (13.0, 14.6)])  # host 111 and 200
def test_peaks_move_to_higher_angle_before_the_transition(window):
    ramp = simulate_ramp(RampSettings(background=0.0, **QUIET))
    inside = (ramp.two_theta >= window[0]) & (ramp.two_theta <= window[1])
    top = np.argmax(ramp.intensity[:, inside], axis=1)[: ramp.transition]
    assert np.all(np.diff(top) >= 0) and top[-1] - top[0] > 50  # > 0.2°: lattice compression


def test_transition_is_gradual(paper_ramp):
    _, corrected = paper_ramp

    def distance(a, b):
        return float(np.linalg.norm(corrected[a] - corrected[b]))

    # Across the transition two neighbours differ hardly more than two neighbours far from it (noise),
    # much less than the two nearest anchors of the training set (150 and 200).
    assert distance(184, 185) < 1.2 * distance(10, 11)
    assert distance(184, 185) < 0.6 * distance(150, 200)
    quiet = remove_baseline(simulate_ramp(RampSettings(**QUIET)).intensity)
    assert np.linalg.norm(quiet[184] - quiet[185]) < 0.2 * np.linalg.norm(quiet[150] - quiet[200])


def test_precursor_before_the_transition(paper_ramp):
    ramp, _ = paper_ramp
    assert 0.03 < ramp.new_phase[175] < 0.3  # new peaks faintly there ten spectra before
    assert ramp.new_phase[150] < 1e-3 and ramp.new_phase[200] > 0.95  # the anchors are clean


def test_background_is_removed_by_als(paper_ramp):
    ramp, corrected = paper_ramp
    bare = simulate_ramp(RampSettings(background=0.0, **QUIET)).intensity  # peaks only, same draws
    away = bare < 0.005
    assert away.mean() > 0.5
    assert np.median(ramp.intensity[away]) > 1.0  # the raw background is large there
    assert abs(np.median(corrected[away])) < 0.1  # ALS leaves about two noise σ (p = 0.002 hugs the floor)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spectra", 2),
        ("points", 4),
        ("transition", 0),
        ("transition", 349),
        ("seed", -1),
        ("noise", -0.1),
        ("two_theta_high", 5.0),
        ("pressure_end", 1.0),
        ("peak_width", 0.0),
        ("texture", float("nan")),
    ],
)
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"RampSettings.{field}: expected"):
        RampSettings(**{field: value})
