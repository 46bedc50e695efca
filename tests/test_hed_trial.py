"""The HED trial (models/hed_trial.py): its metrics contract, the binned model's rules, data handed
over by the driver, and bad configs refused before any data is made (MODELS.md B2-B6, B5.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.config import ConfigError
from models.hed_config import HED_MODELS
from models.hed_trial import run_trial
from search_spaces import load_study

ARCHITECTURES, BINS = load_study("hed_architectures"), load_study("hed_bins")
CONTRACT = ("train_loss", "train_accuracy", "confidence", "boundary_lower", "boundary_upper",
            "boundary_error", "train_time_s", "peak_memory_mb", "trainable_params", "epochs",
            "confidence_score")


@pytest.mark.parametrize("name", HED_MODELS)
def test_every_model_reports_the_contract_each_epoch(name):
    reports = []
    final = run_trial(ARCHITECTURES.config_for("smoke", {"model.name": name}), reports.append)
    assert [r["epochs"] for r in reports] == [1, 2] and final == reports[-1]
    for metrics in reports:
        assert set(CONTRACT) <= set(metrics)
        assert all(math.isfinite(metrics[k]) for k in CONTRACT)
        assert 0 <= metrics["confidence"] <= 1
        assert metrics["boundary_error"] == metrics["boundary_upper"] - 42  # the smoke ramp's transition
        assert metrics["confidence_score"] <= metrics["confidence"]


@pytest.mark.parametrize("name", HED_MODELS)
def test_paper_settings_run_too(name):
    row = next(r for r in ARCHITECTURES.reproduction if r.label == name)
    metrics = run_trial(ARCHITECTURES.grid_config("smoke", row, {}))
    assert metrics["epochs"] == 2  # the smoke budget wins over the row's paper epochs


def test_binned_model_counts_its_parameters_and_stops_early():
    config = BINS.config_for("smoke", {"model.binned_fcnn.bins": 4, "train.epochs": 50,
                                       "train.stop_loss": 10.0})  # any loss is below 10: stop at once
    reports = []
    run_trial(config, reports.append)
    assert len(reports) == 1 and reports[0]["trainable_params"] == 1058 * 4 + 1


def test_data_handed_over_by_the_driver_is_used_and_no_path_is_opened():
    from spectra.ramp import RampSettings, simulate_ramp

    ramp = simulate_ramp(RampSettings(spectra=80, points=512, transition=42, seed=5))
    series = type("Series", (), {"two_theta": ramp.two_theta, "intensity": ramp.intensity})()
    config = ARCHITECTURES.config_for("smoke", {"data.path": "/nonexistent/only/on/the/driver",
                                                "data.transition": 42, "model.name": "cnn"})
    metrics = run_trial(config, data=series)
    assert metrics["boundary_error"] == metrics["boundary_upper"] - 42


def test_the_same_config_gives_the_same_result():
    config = ARCHITECTURES.config_for("smoke", {"model.name": "cnn"})
    first, second = run_trial(config), run_trial(config)
    for key in ("train_loss", "confidence", "boundary_upper"):
        assert first[key] == second[key]


BAD = {
    "overlapping anchors": ({"data.class1": "20:41:5"}, "'data.class1'"),
    "anchors outside the series": ({"data.class1": "50:100:5"}, "'data.class1'"),
    "an empty class": ({"data.class1": "50:50:5"}, "'data.class1'"),
    "a malformed range": ({"data.class0": "0-30"}, "start:stop:step"),
    "no such model": ({"model.name": "resnet99"}, "'model.name'"),
    "zero bins": ({"model.name": "binned_fcnn", "model.binned_fcnn.bins": 0}, "bins"),
    "more bins than points": ({"model.name": "binned_fcnn", "model.binned_fcnn.bins": 600}, "bins"),
    "paper sequences in mini-batches": ({"model.name": "lstm", "model.lstm.sequence": "paper",
                                         "train.batch_size": 8}, "train.batch_size=0"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_configs_are_refused_before_any_data_is_made(case, monkeypatch):
    import models.hed_trial

    monkeypatch.setattr(models.hed_trial, "_simulated", lambda settings: pytest.fail("data was made"))
    change, expected = BAD[case]
    with pytest.raises(ConfigError, match=None) as caught:
        run_trial({**ARCHITECTURES.config_for("smoke"), **change})
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_predictions_vote_per_spectrum_for_the_binned_model():
    from models.binned import majority_vote

    votes = np.array([0, 0, 1, 1, 1, 1])  # two spectra of three rows each
    assert majority_vote(votes, 2).tolist() == [0, 1]
