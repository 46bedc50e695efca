"""What part of a real ramp a HED study looks at (spectra/selection.py), the spectra of neither class
(spectra/neither.py) and the simulated ramp with a second transition into a third regime (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest

from spectra.baseline import remove_baseline
from spectra.errors import DataError
from spectra.neither import bin_points, mixture_distance, neither_class, neither_in_segments
from spectra.ramp import RampSettings, simulate_ramp
from spectra.selection import (
    check_inside,
    crop_mask,
    parse_anchors,
    parse_two_theta,
    parse_window,
    segments,
)

# 150 spectra: A (0–49) → B (50–99) → C, the third regime (100–149).
THREE_REGIMES = RampSettings(spectra=150, points=1024, transition=50, second_transition=100)


@pytest.fixture(scope="module")
def three_regimes():
    ramp = simulate_ramp(THREE_REGIMES)
    return ramp, remove_baseline(ramp.intensity)


def test_the_window_is_the_whole_series_by_default_and_indices_stay_the_series():
    assert parse_window("", 384) == range(0, 384)
    assert parse_window("0:130", 384) == range(0, 130)
    assert parse_window("64:384", 384) == range(64, 384)


@pytest.mark.parametrize(("text", "said"), [("0:400", "reaches past the series of 384"),
                                            ("130", "START:STOP"), ("50:40", "START:STOP"),
                                            ("a:b", "START:STOP"), ("5:6", "at least 2 spectra")])
def test_a_bad_window_is_one_line_naming_it(text, said):
    with pytest.raises(DataError, match=said) as caught:
        parse_window(text, 384, "config key 'data.window'")
    assert str(caught.value).startswith("config key 'data.window'") and "\n" not in str(caught.value)


def test_anchor_ranges_in_time_order_make_segments_between_them():
    ranges = parse_anchors("0:55:5,95:125:5,200:381:10")
    assert [len(r) for r in ranges] == [11, 6, 19]
    first, second = segments(ranges, range(0, 384))
    # The first segment starts at the window, the last ends with it; between: first anchor to last anchor.
    assert (first.start, first.stop) == (0, 121) and (second.start, second.stop) == (95, 384)
    assert first.class1 == second.class0 == range(95, 125, 5)
    assert first.as_range("class0") == "0:55:5"


def test_two_ranges_are_the_paper_case_the_whole_window():
    (only,) = segments(parse_anchors("0:55:5,95:125:5"), range(0, 130))
    assert (only.start, only.stop) == (0, 130)


@pytest.mark.parametrize(("text", "said"), [
    ("0:55:5", "at least 2 anchor ranges"),
    ("95:125:5,0:55:5", "range 2 (0:55:5) starts at 0, not after range 1"),
    ("0:60:5,50:125:5", "range 2 (50:125:5) starts at 50, not after range 1 (0:60:5) ends at 55"),
    ("0:55:5,60:60:5", "range 2 (60:60:5) selects no spectrum"),
    ("0:55:5,x", "start:stop:step"),
])
def test_anchors_out_of_order_overlapping_or_empty_are_refused(text, said):
    with pytest.raises(DataError, match=None) as caught:
        parse_anchors(text, "config key 'data.anchors'")
    assert said in str(caught.value)


def test_anchors_must_lie_inside_the_window_and_the_series():
    ranges = parse_anchors("0:55:5,95:125:5")
    with pytest.raises(DataError, match="reaches outside the window 0:100"):
        check_inside(ranges, range(0, 100), 384, ["class0", "class1"])
    with pytest.raises(DataError, match="reaches outside the window 10:130"):
        check_inside(ranges, range(10, 130), 384, ["class0", "class1"])
    with pytest.raises(DataError, match="reaches spectrum 120, but the series has 110 spectra"):
        check_inside(ranges, range(0, 110), 110, ["class0", "class1"])
    check_inside(ranges, range(0, 130), 384, ["class0", "class1"])


def test_a_2theta_range_crops_inside_the_data_only():
    grid = np.linspace(9.56, 25.55, 4023)
    keep = crop_mask(grid, "10:24")
    assert grid[keep].min() >= 10 and grid[keep].max() <= 24 and keep.sum() == pytest.approx(3522, abs=2)
    assert crop_mask(grid, "") is None and parse_two_theta("") is None
    for text, said in [("5:24", "outside the data's 2θ range 9.56..25.55"), ("10:30", "outside"),
                       ("24:10", "LO:HI"), ("10", "LO:HI"), ("10:10.01", "keeps 3 points")]:
        with pytest.raises(DataError, match=None) as caught:
            crop_mask(grid, text, "config key 'data.two_theta'")
        assert said in str(caught.value), caught.value


def test_the_second_transition_ends_in_a_third_regime(three_regimes):
    ramp, _ = three_regimes
    assert ramp.transitions == (50, 100)
    assert ramp.third_phase[99] < 0.5 <= ramp.third_phase[100] and ramp.third_phase[-1] > 0.99
    # The first part of the ramp draws the same numbers as without the second transition.
    plain = simulate_ramp(RampSettings(spectra=150, points=1024, transition=50))
    np.testing.assert_allclose(plain.intensity[:60], ramp.intensity[:60], atol=2e-3)
    assert not np.allclose(plain.intensity[120:], ramp.intensity[120:], atol=0.05)
    with pytest.raises(ValueError, match="second_transition"):
        RampSettings(spectra=150, transition=50, second_transition=40)


def test_a_mixture_of_the_anchors_is_at_distance_zero_and_a_new_peak_is_not():
    anchors = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    distance = mixture_distance(np.array([[0.3, 0.7, 0, 0], [0.5, 0.5, 0, 1.0], [-1.0, 0, 0, 0]]), anchors)
    np.testing.assert_allclose(distance, [0.0, 1 / np.sqrt(1.5), 1.0], atol=1e-9)  # no negative mixtures
    assert bin_points(np.arange(8.0)[None], 4).tolist() == [[1.0, 5.0, 9.0, 13.0]]


def test_the_third_regime_is_neither_class_of_two_anchor_sets(three_regimes):
    _, spectra = three_regimes
    anchors = spectra[np.r_[0:36:5, 65:86:5]]
    found = neither_class(spectra, anchors)
    flagged = np.flatnonzero(found.flagged)
    assert set(range(102, 150)) <= set(flagged), "the established third regime"
    assert len([i for i in flagged if i < 95]) <= 3, "the two known regimes and the reaction between them"


def test_with_an_anchor_range_in_the_third_regime_nothing_is_neither(three_regimes):
    _, spectra = three_regimes
    parts = segments(parse_anchors("0:36:5,65:86:5,115:150:5"), range(0, 150))
    flagged = neither_in_segments(spectra, parts)
    assert len(flagged) <= 3 and not any(i >= 95 for i in flagged), flagged
