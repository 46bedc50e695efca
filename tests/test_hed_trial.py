"""The HED trial (trials/hed.py): its metrics contract, the binned model's rules, data handed
over by the driver, and bad configs refused before any data is made (MODELS.md B2-B6, B5.8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.registry import create_model
from search_spaces import load_study
from trials.config import ConfigError
from trials.contract import stop_reason
from trials.hed import run_trial
from trials.hed_config import HED_MODELS, QUIRKS

ARCHITECTURES, BINS = load_study("hed_architectures"), load_study("hed_bins")
CONTRACT = ("train_loss", "train_accuracy", "confidence", "boundary_lower", "boundary_upper",
            "train_time_s", "peak_memory_mb", "trainable_params", "epochs", "confidence_score")


@pytest.mark.parametrize("name", HED_MODELS)
def test_every_model_reports_the_contract_each_epoch(name):
    reports = []
    final = run_trial(ARCHITECTURES.config_for("smoke", {"model.name": name}), reports.append)
    assert [r["epochs"] for r in reports] == [1, 2] and final == reports[-1]
    for metrics in reports:
        assert set(CONTRACT) <= set(metrics)
        assert all(math.isfinite(metrics[k]) for k in CONTRACT)
        assert 0 <= metrics["confidence"] <= 1
        # boundary_error is there whenever a boundary was found (confidence > 0, B6.8); without one
        # there is nothing to be wrong about and the trial may leave it out.
        # Once logged, an evaluation that loses the boundary says NaN (never a stale number).
        if metrics["confidence"] > 0:
            assert metrics["boundary_error"] == metrics["boundary_upper"] - 42  # the smoke ramp's transition
        elif "boundary_error" in metrics:
            assert math.isnan(metrics["boundary_error"])
        assert metrics["confidence_score"] <= metrics["confidence"]


# Each model's quirks at the paper's settings, written out from MODELS.md B5.1-B5.7.
PAPER_QUIRKS = {
    "fcnn_1d": {"init": "paper"},  # B5.1: weights ~ N(1, 0.02)
    "cnn": {"init": "paper"},  # B5.2: weights ~ N(0, 0.05)
    "msresnet": {"keep_unused_linear": True},  # B5.3: the dead Linear(4023 -> 512)
    "lstm": {"sequence": "paper"},  # B5.4: rows reshaped into sequences
    "transformer": {"sequence": "paper"},  # B5.5: attention across spectra
    "sc_attention": {"init": "paper", "ffn": "bypassed"},  # B5.6
    "sct_attention": {"init": "paper", "sequence": "paper", "ffn": "bypassed"},  # B5.7
}


# Checks of what a trial's model shows of a quirk: (the model after training, its state when built).
def _weights_mean_one(model, initial):
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            assert abs(initial[f"{name}.weight"].mean().item() - 1.0) < 0.01, name


def _weights_normal_005(model, initial):
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)) and module.weight.numel() >= 100:
            assert abs(initial[f"{name}.weight"].std().item() - 0.05) < 0.01, name


def _dead_linear_kept(model, initial):
    assert isinstance(model.unused_linear, nn.Linear)


def _paper_sequences(model, initial):
    assert model.sequence == "paper"


def _ffn_bypassed(model, initial):
    for key, value in model.ffn.state_dict().items():  # no gradient reached it (B5.6 step 8)
        assert torch.equal(value, initial[f"ffn.{key}"]), key
    assert not torch.equal(model.fc1.weight, initial["fc1.weight"])  # while the head trained


EVIDENCE = {
    "fcnn_1d": [_weights_mean_one],
    "cnn": [_weights_normal_005],
    "msresnet": [_dead_linear_kept],
    "lstm": [_paper_sequences],
    "transformer": [_paper_sequences],
    "sc_attention": [_weights_normal_005, _ffn_bypassed],
    "sct_attention": [_weights_normal_005, _paper_sequences, _ffn_bypassed],
}


def _spy_on_the_model(monkeypatch) -> dict:
    """Record the model the trial builds, its state then, and the BatchNorm mode of each test forward."""
    import trials.hed

    built = {"test_modes": []}

    def record(module, args, kwargs):
        if kwargs.get("test"):
            built["test_modes"].append(module.training)

    def create(name, **options):
        model = create_model(name, **options)
        built.update(model=model, initial={k: v.clone() for k, v in model.state_dict().items()})
        model.register_forward_pre_hook(record, with_kwargs=True)
        return model

    monkeypatch.setattr(trials.hed, "create_model", create)
    return built


@pytest.mark.parametrize("name", HED_MODELS)
def test_paper_settings_turn_every_quirk_on(name, monkeypatch):
    row = next(r for r in ARCHITECTURES.reproduction if r.label == name)
    config = ARCHITECTURES.grid_config("smoke", row, {})
    expected = {f"model.{name}.{option}": value for option, value in PAPER_QUIRKS[name].items()}
    assert {key for key in QUIRKS if key.startswith(f"model.{name}.")} == set(expected)  # none untested
    assert config["eval.batchnorm"] == "train" and {key: config[key] for key in expected} == expected
    fair = ARCHITECTURES.config_for("smoke", {"model.name": name})  # tuning keeps the fair choices
    assert fair["eval.batchnorm"] == "eval" and all(fair[key] != value for key, value in expected.items())

    built = _spy_on_the_model(monkeypatch)
    metrics = run_trial(config)
    assert metrics["epochs"] == 2  # the smoke budget wins over the row's paper epochs
    for check in EVIDENCE[name]:
        check(built["model"], built["initial"])
    assert built["test_modes"] and all(built["test_modes"])  # B3: BatchNorm in train mode at test


def test_binned_model_counts_its_parameters_and_stops_early():
    config = BINS.config_for("smoke", {"model.binned_fcnn.bins": 4, "train.epochs": 50,
                                       "train.stop_loss": 10.0})  # any loss is below 10: stop at once
    reports = []
    run_trial(config, reports.append)
    assert len(reports) == 1 and reports[0]["trainable_params"] == 1058 * 4 + 1
    # How the stop is recorded: the trial says it ended by its own rule, so the driver records
    # stop_reason=own_rule (FINISHED, Optuna COMPLETE), not a scheduler's stop.
    assert reports[0]["stop_reason"] == "own_rule"
    assert (reports[0]["epochs"], reports[0]["planned_epochs"]) == (1, 50)
    assert stop_reason(reports[0]) == "own_rule"


def test_a_model_that_runs_all_its_epochs_says_no_stop_reason():
    config = BINS.config_for("smoke", {"model.binned_fcnn.bins": 4, "train.epochs": 2,
                                       "train.stop_loss": 0.0, "train.stop_accuracy": 1.0})
    reports = []
    run_trial(config, reports.append)
    assert [r["epochs"] for r in reports] == [1, 2] and "stop_reason" not in reports[-1]
    assert stop_reason(reports[-1]) == "completed"


def test_a_config_naming_files_never_falls_back_to_the_simulator():
    from trials.hed import MissingDataError

    config = ARCHITECTURES.config_for("smoke", {"data.path": "/data/ramp", "model.name": "cnn"})
    with pytest.raises(MissingDataError, match="'data.path' names '/data/ramp'"):
        run_trial(config)  # the driver handed no data


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
    "an unknown feed-forward mode": ({"model.name": "sc_attention", "model.sc_attention.ffn": "skipped"},
                                     "'model.sc_attention.ffn'"),
    "an unknown noise mode": ({"data.noise_mode": "accumulated"}, "'data.noise_mode'"),
    "paper sequences in mini-batches": ({"model.name": "lstm", "model.lstm.sequence": "paper",
                                         "train.batch_size": 8}, "train.batch_size=0"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_configs_are_refused_before_any_data_is_made(case, monkeypatch):
    import trials.hed

    monkeypatch.setattr(trials.hed, "_simulated", lambda settings: pytest.fail("data was made"))
    change, expected = BAD[case]
    with pytest.raises(ConfigError, match=None) as caught:
        run_trial({**ARCHITECTURES.config_for("smoke"), **change})
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_predictions_vote_per_spectrum_for_the_binned_model():
    from models.binned import majority_vote

    votes = np.array([0, 0, 1, 1, 1, 1])  # two spectra of three rows each
    assert majority_vote(votes, 2).tolist() == [0, 1]


def test_a_boundary_lost_at_a_later_epoch_is_recorded_as_nan_not_as_the_old_number(monkeypatch):
    """MLflow shows each metric's latest value: once a boundary_error is logged, an evaluation without
    a boundary must overwrite it (NaN), or the run would show an error for a boundary it no longer has."""
    import trials.hed
    from spectra.confidence import Confidence

    found, lost = Confidence(0.9, 40, 44, 3), Confidence(0.0, 0, 79, 78, found=False)
    evaluations = iter([found, lost, found])
    monkeypatch.setattr(trials.hed, "classification_confidence", lambda labels: next(evaluations))
    reports = []
    config = ARCHITECTURES.config_for("smoke", {"model.name": "cnn", "train.epochs": 3, "eval.every": 1})
    run_trial(config, reports.append)
    errors = [r.get("boundary_error") for r in reports]
    assert errors[0] == 44 - 42 and math.isnan(errors[1]) and errors[2] == 44 - 42
