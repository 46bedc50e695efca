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


def test_runs_of_length_one_do_not_count():
    result = classification_confidence([0, 1, 1, 1])  # a single leading 0 is not a run (B6 step 1)
    assert result.boundary_lower == 0 and result.boundary_upper == 1
    assert result.confidence == pytest.approx(1.0)  # lower 0, upper 1: nothing between


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="each 0 or 1"):
        classification_confidence([0, 2, 1])
    with pytest.raises(ValueError, match="at least 2"):
        classification_confidence([1])
