"""The HED trial on a real-looking ramp (issue 11): generated ramps with two transitions and a third
regime; a window, K anchor ranges, the neither-class count, a 2θ range, labels.json and the state of
several pairs. The FCNN learns this ramp in a second, so each mode runs once per module."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch

from search_spaces import load_study
from trials.config import ConfigError
from trials.hed import run_trial
from trials.hed_config import simulated_points

ARCHITECTURES = load_study("hed_architectures")
# A (0–49) → B (50–99) → C, the third regime (100–149), on a 1024-point grid; anchors on every 5th.
RAMP = {"data.spectra": 150, "data.points": 1024, "data.sim_transition": 50, "data.sim_transition2": 100,
        "data.pool_step": 5, "data.copies": 5, "train.epochs": 8, "model.name": "fcnn_1d"}
TWO = {"data.class0": "0:36:5", "data.class1": "65:86:5"}  # anchors before and after the first reaction
THREE = {"data.anchors": "0:36:5,65:86:5,115:150:5"}
NEAR = 3  # "within a few spectra"


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def config(**layers):
    return ARCHITECTURES.config_for("smoke", {**RAMP, **layers})


class Reports:
    """A report that takes files, as the trainable's does."""

    def __init__(self):
        self.metrics, self.artifacts = [], []

    def __call__(self, metrics, state=None, artifacts=None):
        self.metrics.append(dict(metrics))
        self.artifacts.append(artifacts)


@pytest.fixture(scope="module")
def whole():
    return run_trial(config(**TWO))


@pytest.fixture(scope="module")
def windowed():
    reports = Reports()
    return run_trial(config(**TWO, **{"data.window": "0:95"}), reports), reports


@pytest.fixture(scope="module")
def multi():
    reports = Reports()
    return run_trial(config(**THREE), reports), reports


def test_the_whole_series_with_two_anchor_ranges_reports_the_spectra_of_neither_class(whole):
    # The story: the third regime is forced into class 1 or 0 and wrecks the confidence,
    # and the trial now says so.
    assert whole["neither_class"] >= 45
    assert whole["confidence"] < 0.8


def test_a_window_finds_the_transition_within_a_few_spectra_in_whole_series_indices(windowed):
    metrics, _ = windowed
    assert metrics["confidence"] > 0.9 and abs(metrics["boundary_error"]) <= NEAR
    assert abs(metrics["boundary_upper"] - 50) <= NEAR and metrics["neither_class"] <= 3


def test_k_anchor_ranges_find_each_transition_within_a_few_spectra(multi):
    metrics, _ = multi
    for k, transition in ((1, 50), (2, 100)):
        assert abs(metrics[f"boundary_{k}_error"]) <= NEAR, metrics
        assert abs(metrics[f"boundary_{k}_upper"] - transition) <= NEAR
        assert 0 <= metrics[f"confidence_{k}"] <= 1
    # The overall objective is the minimum over transitions (trials/hed.py says why), the mean beside it.
    assert metrics["confidence"] == min(metrics["confidence_1"], metrics["confidence_2"])
    mean = (metrics["confidence_1"] + metrics["confidence_2"]) / 2
    assert metrics["confidence_mean"] == pytest.approx(mean)
    assert "boundary_lower" not in metrics and metrics["neither_class"] <= 3
    assert metrics["confidence_score"] <= metrics["confidence"]


def test_labels_json_comes_once_with_the_last_report_in_whole_series_indices(multi):
    metrics, reports = multi
    assert [a is not None for a in reports.artifacts] == [False] * 7 + [True]
    document = json.loads(reports.artifacts[-1]["labels.json"])
    assert document["spectra"] == 150 and document["window"] == [0, 150]
    first, second = document["pairs"]
    assert (first["start"], first["stop"], second["start"], second["stop"]) == (0, 86, 65, 150)
    assert first["class1"] == second["class0"] == list(range(65, 86, 5))
    assert len(first["labels"]) == 86 and len(second["labels"]) == 85
    assert second["boundary_upper"] == metrics["boundary_2_upper"] and len(document["neither_class"]) <= 3


def test_a_trial_of_several_pairs_resumes_from_its_state_as_if_uninterrupted():
    states = {}

    def report(metrics, state=None):  # each state through a checkpoint's round trip
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        states[metrics["epochs"]] = torch.load(buffer, weights_only=True)

    settings = config(**THREE, **{"train.epochs": 4, "model.fcnn_1d.dropout": 0.2})
    full = run_trial(settings, report, report_state=True)
    saved = states[2]
    assert set(saved["model"]) == set(saved["more_pairs"][0]["model"]), "pair weights side by side"
    resumed = run_trial(settings, lambda metrics, state=None: None, resume_from=saved, report_state=True)
    measured = ("train_time_s", "peak_memory_mb", "confidence_score")
    assert {k: v for k, v in resumed.items() if k not in measured} == \
           {k: v for k, v in full.items() if k not in measured}


def test_a_2theta_range_crops_what_the_model_sees():
    cropped = config(**TWO, **{"data.two_theta": "11:20", "train.epochs": 1})
    grid = np.linspace(9.56, 25.55, 1024)
    assert simulated_points(cropped) == int(((grid >= 11) & (grid <= 20)).sum()) < 1024
    crop, plain = run_trial(cropped), run_trial(config(**TWO, **{"train.epochs": 1}))
    assert crop["trainable_params"] < plain["trainable_params"]
    assert math.isfinite(crop["confidence"])


@pytest.mark.parametrize(("change", "said"), [
    ({**THREE, "data.class0": "0:21:5"}, "'data.anchors': given together with data.class0=0:21:5"),
    ({"data.anchors": "65:86:5,0:36:5"}, "range 2 (0:36:5) starts at 0, not after range 1"),
    ({"data.anchors": "0:40:5,35:86:5"}, "not after range 1 (0:40:5) ends at 35"),
    ({**THREE, "data.window": "0:140"}, "'data.anchors' (range 3): 115:150:5 reaches outside the window"),
    ({**TWO, "data.window": "10:95"}, "'data.class0': 0:36:5 reaches outside the window 10:95"),
    ({**TWO, "data.window": "0:200"}, "'data.window': '0:200' reaches past the series of 150 spectra"),
    ({**TWO, "data.two_theta": "5:20"}, "'data.two_theta': '5:20' reaches outside the data's 2θ range"),
    ({**TWO, "data.sim_transition2": 40}, "'data.sim_transition2': expected 0 (none) or an integer in 51"),
    ({"data.anchors": "0:36:3,65:86:5"}, "multiples of pool_step=5"),
])
def test_bad_windows_anchors_and_ranges_are_refused_before_any_data(change, said):
    with pytest.raises(ConfigError, match=None) as caught:
        config(**change)
    assert said in str(caught.value) and "\n" not in str(caught.value), caught.value


def test_anchors_replace_the_budgets_class_ranges():
    # The smoke budget sets data.class0/class1; with data.anchors they do not apply (and are no error).
    settings = ARCHITECTURES.config_for("smoke", {"data.anchors": "0:31:5,50:76:5"})
    assert settings["data.class0"] == "0:31:5"  # the budget's, recorded, unused
    assert load_study("hed_bins").config_for("smoke", {"data.anchors": "0:31:5,50:76:5"})


def test_two_anchor_ranges_given_as_data_anchors_are_the_paper_case_unchanged():
    as_classes = run_trial(config(**TWO, **{"train.epochs": 2}))
    as_anchors = run_trial(config(**{"data.anchors": "0:36:5,65:86:5", "train.epochs": 2}))
    measured = ("train_time_s", "peak_memory_mb", "confidence_score")
    assert {k: v for k, v in as_anchors.items() if k not in measured} == \
           {k: v for k, v in as_classes.items() if k not in measured}
