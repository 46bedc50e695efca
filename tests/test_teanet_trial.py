"""The TeaNet trial (trials/teanet.py) at the smoke budget: validation before training, the metrics
contract, determinism, both schedules and reconstruction losses, model selection and divergence."""

import math

import numpy as np
import pytest
import torch

from models import create_model
from search_spaces import load_study
from trials import teanet as teanet_trial
from trials.config import ConfigError
from trials.teanet import TrialDivergedError, _JointTrainer, _prepare_data, _recon_loss, run_trial
from trials.teanet_config import classifier_options, lorentz_settings, unet_options

STUDY = load_study("teanet_masks")
METRICS = {"train_loss", "val_loss", "val_accuracy", "epoch_val_accuracy", "recon_mse", "accuracy",
           "val_accuracy_mean", "accuracy_mean",
           "selected_epoch", "train_time_s", "peak_memory_mb", "trainable_params", "epochs",
           "samples_per_s", "planned_epochs", "progress"}
MEASURED = {"train_time_s", "peak_memory_mb", "samples_per_s"}  # of the machine, not of the trial
# Clearly separable classes and faster learning rates: learns within 8 smoke-sized epochs. Across
# train.seed 0-5 × data.seed 0-3 the lowest val_accuracy seen was 0.75 (chance is 0.25).
EASY = {"data.theta": 10.0, "data.samples_per_class": 20, "train.lr_unet": 3e-3,
        "train.lr_classifier": 3e-3, "train.epochs": 8}


def smoke(*layers: dict) -> dict:
    """A complete smoke-budget config, overridden by ``layers``."""
    return STUDY.config_for("smoke", *layers)


def run(config: dict) -> tuple[list[dict], dict]:
    """Run a trial; return a copy of every report and the returned metrics."""
    reports: list[dict] = []
    result = run_trial(config, lambda metrics, artifacts=None: reports.append(dict(metrics)))
    return reports, result


def without_measured(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key not in MEASURED}


def networks(config: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The U-Net and the classifier a config names, built as the trial builds them."""
    return (create_model("teanet_unet", **unet_options(config)),
            create_model(config["model.classifier"], **classifier_options(config)))


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], param) for name, param in module.named_parameters())


def report_must_not_be_called(metrics: dict) -> None:
    raise AssertionError(f"report was called: training started ({metrics})")


# --- bad input fails before anything is made ---------------------------------------------------

@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if the trial gets as far as generating its data."""
    def generate(settings):
        raise AssertionError("data was generated before the config was validated")
    monkeypatch.setattr(teanet_trial, "cached_lorentz", generate)


@pytest.mark.parametrize(("change", "named"), [
    ({"loss.gama": 0.5}, "unknown config key 'loss.gama'"),
    ({"loss.gamma": "x"}, "'loss.gamma'"),
    ({"loss.gamma": 0.0}, "'loss.gamma'"),
    ({"loss.gamma": 1.0}, "'loss.gamma'"),
    ({"mask.tau": 1.5}, "'mask.tau'"),
    ({"mask.tau_low": 0.0}, "'mask.tau_low'"),
    ({"mask.tau_low": 0.7, "mask.tau_high": 0.3}, "'mask.tau_low'"),
    ({"mask.tau_low": 0.5, "mask.tau_high": 0.5}, "'mask.tau_low'"),
    ({"mask.scheme": "MS1", "mask.a": 0.75, "mask.tau": 0.5}, "'mask.tau'"),  # segment would not fit
    ({"mask.copies": 0}, "'mask.copies'"),
    ({"data.length": 16, "model.unet_depth": 5}, "'data.length'"),
    ({"data.fwhm_low": 100.0, "data.fwhm_high": 50.0}, "'data.fwhm_low'"),
    ({"data.other_fwhm_low": 100.0, "data.other_fwhm_high": 50.0}, "'data.other_fwhm_low'"),
    ({"model.unet_kernel": 4}, "'model.unet_kernel'"),
    ({"model.classifier_layers": "4,X,M"}, "'model.classifier_layers': layers"),
    ({"model.classifier_layers": "4,M,8,M,8,M,8,M,8,M,8,M,8,M"}, "'model.*'"),  # too deep for 64 points
    ({"mask.scheme": "MS5", "mask.segments": 10}, "'mask.segments'"),  # 10 × 0.1 > tau_high 0.7
    ({"mask.scheme": "MS5", "mask.segments": 40, "mask.segment_tau_low": 0.01},  # 40 points + 39 gaps > 64
     "'mask.segments'"),
    ({"train.device": "gpu"}, "'train.device'"),
])
def test_bad_config_is_refused_before_training(no_data, change, named):
    with pytest.raises(ConfigError) as info:
        run_trial({**smoke(), **change}, report_must_not_be_called)
    assert named in str(info.value)
    assert "config key" in str(info.value)


# --- a smoke trial and its metrics ---------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_run() -> tuple[dict, list[dict], dict]:
    config = smoke({"train.epochs": 3})
    teanet_trial.cached_lorentz.cache_clear()  # this run makes its data; later runs reuse it
    return (config, *run(config))


def test_smoke_trial_reports_every_metric_once_per_epoch(smoke_run):
    config, reports, _ = smoke_run
    assert len(reports) == config["train.epochs"] == 3
    assert [report["epochs"] for report in reports] == [1, 2, 3]
    for report in reports:
        assert set(report) == METRICS
        assert all(math.isfinite(value) for value in report.values()), report
        for key in ("val_accuracy", "epoch_val_accuracy", "accuracy"):
            assert 0 <= report[key] <= 1
        assert 1 <= report["selected_epoch"] <= report["epochs"]
        assert report["train_time_s"] > 0 and report["samples_per_s"] > 0
        assert report["peak_memory_mb"] >= 0 and report["recon_mse"] >= 0


def test_smoke_trial_counts_the_parameters_of_both_networks(smoke_run):
    config, reports, _ = smoke_run
    unet, classifier = networks(config)
    expected = sum(p.numel() for p in [*unet.parameters(), *classifier.parameters()])
    assert all(report["trainable_params"] == expected for report in reports)


def test_smoke_trial_returns_its_last_report(smoke_run):
    _, reports, result = smoke_run
    assert result == reports[-1]


def test_same_config_gives_the_same_metrics(smoke_run):
    config, reports, _ = smoke_run
    again, _ = run(config)  # reuses the cached data: training must not have changed it
    assert [without_measured(r) for r in again] == [without_measured(r) for r in reports]


def test_another_train_seed_gives_another_training(smoke_run):
    config, reports, _ = smoke_run
    other, _ = run({**config, "train.seed": 1})
    assert [r["train_loss"] for r in other] != [r["train_loss"] for r in reports]


@pytest.mark.parametrize("recon", ["sse", "l2norm"])
@pytest.mark.parametrize("schedule", ["alternating", "joint"])
def test_schedules_and_reconstruction_losses_run(schedule, recon):
    reports, result = run(smoke({"train.schedule": schedule, "loss.recon": recon}))
    assert len(reports) == 2 and set(result) == METRICS
    assert all(math.isfinite(value) for value in result.values())


def test_reconstruction_losses_sum_of_squares_and_l2_norm():
    reconstruction = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    original = torch.zeros(2, 2)
    assert _recon_loss("sse", reconstruction, original).item() == pytest.approx((25 + 0) / 2)
    assert _recon_loss("l2norm", reconstruction, original).item() == pytest.approx((5 + 0) / 2)


# --- which network an epoch trains ---------------------------------------------------------------

def one_epoch(schedule: str, epoch: int) -> tuple[bool, bool]:
    """Train epoch ``epoch`` of a fresh smoke trainer; (U-Net changed, classifier changed)."""
    config = smoke({"train.schedule": schedule})
    torch.manual_seed(0)
    unet, classifier = networks(config)
    trainer = _JointTrainer(config, unet, classifier)
    data = _prepare_data(config, teanet_trial.cached_lorentz(lorentz_settings(config)), "cpu")
    unet_before, classifier_before = weights(unet), weights(classifier)
    trainer.train_epoch(epoch, data, torch.Generator().manual_seed(0))
    assert all(p.requires_grad for p in classifier.parameters())  # restored after a U-Net epoch
    return changed(unet_before, unet), changed(classifier_before, classifier)


@pytest.mark.parametrize(("schedule", "epoch", "unet_changes", "classifier_changes"), [
    ("alternating", 0, True, False),  # even epochs: the U-Net alone (repo)
    ("alternating", 1, False, True),  # odd epochs: the classifier alone
    ("joint", 0, True, True),  # paper's Algorithm 1: both, every step
    ("joint", 1, True, True),
])
def test_which_weights_an_epoch_updates(schedule, epoch, unet_changes, classifier_changes):
    assert one_epoch(schedule, epoch) == (unet_changes, classifier_changes)


# --- model selection on validation loss ----------------------------------------------------------

def test_kept_classifier_is_the_one_with_the_lowest_validation_loss_so_far():
    # A classifier learning rate this high makes the validation loss jump about, so the kept
    # classifier stays behind for several epochs (selected epochs 1, 1, 1, 1, 1, 6 here).
    reports, _ = run(smoke({"train.lr_classifier": 0.1, "train.epochs": 6}))
    val_losses = [r["val_loss"] for r in reports]
    for i, report in enumerate(reports):
        best = int(np.argmin(val_losses[:i + 1]))  # the first of equal losses is kept
        assert report["selected_epoch"] == best + 1
        assert report["val_accuracy"] == reports[best]["epoch_val_accuracy"]
        assert report["accuracy"] == reports[best]["accuracy"]  # tested once, when it was kept
    assert any(r["selected_epoch"] < r["epochs"] for r in reports), "selection never kept an older epoch"


# --- divergence ----------------------------------------------------------------------------------

def poisoned_recon_loss(value: float, poisoned: list[bool]):
    """A reconstruction loss that becomes ``value`` once ``poisoned[0]`` is set."""
    def recon_loss(kind, reconstruction, original):
        loss = _recon_loss(kind, reconstruction, original)
        return loss * value if poisoned[0] else loss
    return recon_loss


@pytest.mark.parametrize(("value", "shown"), [(math.nan, "nan"), (math.inf, "inf")])
def test_non_finite_loss_fails_the_trial_at_its_first_epoch(monkeypatch, value, shown):
    monkeypatch.setattr(teanet_trial, "_recon_loss", poisoned_recon_loss(value, [True]))
    with pytest.raises(TrialDivergedError, match=rf"loss became {shown} at epoch 1, step 0 \(unet phase\)"):
        run_trial(smoke(), report_must_not_be_called)


def test_divergence_names_the_epoch_it_happened_in(monkeypatch):
    poisoned = [False]
    monkeypatch.setattr(teanet_trial, "_recon_loss", poisoned_recon_loss(math.nan, poisoned))
    reports = []

    def report(metrics):
        reports.append(metrics)
        poisoned[0] = len(reports) == 2  # epochs 1 and 2 go well; the next U-Net epoch is epoch 3

    with pytest.raises(TrialDivergedError, match=r"loss became nan at epoch 3, step 0 \(unet phase\)"):
        run_trial(smoke({"train.epochs": 4}), report)
    assert [r["epochs"] for r in reports] == [1, 2]


def test_absurd_learning_rates_diverge():
    with pytest.raises(TrialDivergedError, match=r"loss became (nan|inf) at epoch \d"):
        run_trial(smoke({"train.lr_unet": 1e12, "train.lr_classifier": 1e12, "train.epochs": 4}))


# --- it learns -----------------------------------------------------------------------------------

def test_learns_an_easy_dataset_well_above_chance():
    config = smoke(EASY)
    _, result = run(config)
    assert 1 / config["data.classes"] == 0.25  # chance
    assert result["val_accuracy"] >= 0.6
