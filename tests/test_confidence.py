"""The HED confidence metric and boundary (MODELS.md B6, with our rule 8: 0 when no boundary)."""

import pytest

from spectra.confidence import classification_confidence


def test_a_clean_step_is_full_confidence_with_the_boundary_at_the_step():
    result = classification_confidence([0] * 185 + [1] * 164)
    assert result.confidence == 1.0
    assert (result.boundary_lower, result.boundary_upper) == (184, 185)
    assert result.boundary_error(185) == 0  # a perfect classifier: boundary_upper = transition


def test_everything_between_the_runs_is_ambiguous_whatever_it_holds():
    labels = [0] * 10 + [1, 0, 0, 1, 0] + [1] * 5  # indices 10-14 hold zeros, yet are ambiguous
    result = classification_confidence(labels)
    assert (result.boundary_lower, result.boundary_upper) == (9, 15)
    assert result.ambiguous == 5
    assert result.confidence == pytest.approx(1 - 5 / 20)
    assert result.boundary_error(12) == 3


@pytest.mark.parametrize("labels", [[0] * 30, [1] * 30], ids=["all zeros", "all ones"])
def test_one_class_everywhere_has_no_boundary_and_zero_confidence(labels):
    assert classification_confidence(labels).confidence == 0.0


def test_no_run_at_either_end_is_zero_confidence():
    labels = [1, 0] * 10  # starts with 1 and ends with 0: neither run exists
    result = classification_confidence(labels)
    assert (result.boundary_lower, result.boundary_upper) == (0, 19)
    assert result.confidence == 0.0


@pytest.mark.parametrize(("labels", "boundary"), [([0, 1, 1, 1], (0, 1)), ([0, 0, 0, 1], (2, 3))],
                         ids=["one leading 0", "one trailing 1"])
def test_a_run_of_length_one_still_bounds_the_series(labels, boundary):
    # B6 steps 1-2: C0_upper stays 0 for a leading run of length one, which is that run's last index
    # (likewise C1_lower = N_t−1 for one trailing 1); step 4: none of the exceptions applies, so
    # P_conf = 1 − N_f / N_t with nothing between the runs: full confidence, a boundary found.
    result = classification_confidence(labels)
    assert (result.boundary_lower, result.boundary_upper) == boundary
    assert result.found and result.ambiguous == 0
    assert result.confidence == 1.0
    assert result.boundary_error(boundary[1]) == 0


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="each 0 or 1"):
        classification_confidence([0, 2, 1])
    with pytest.raises(ValueError, match="at least 2"):
        classification_confidence([1])


@pytest.mark.parametrize("labels", [[0] * 6, [1] * 6, [1, 0, 1, 0, 1, 0]])
def test_no_boundary_means_no_boundary_error_rather_than_a_number(labels):
    result = classification_confidence(labels)
    assert not result.found and result.boundary_error(3) is None


def test_a_found_boundary_is_measured_against_the_transition():
    result = classification_confidence([0, 0, 0, 1, 1, 1])
    assert result.found and result.boundary_error(3) == 0 and result.boundary_error(4) == -1
    assert result.boundary_error(None) is None, "unknown transition: nothing to measure"
