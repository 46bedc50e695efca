"""teanet_gamma (γ, rates, schedule, copies, losses, joint vs separate; Table 5) and teanet_synthetic
(the 20 ϑ × FWHM cells × 2 methods and the 5 × 4 table) — issue 9, part 3."""

from __future__ import annotations

import collections

import numpy as np
import optuna
import pytest
import torch

from models import create_model
from search_spaces import load_study
from search_spaces.teanet_synthetic import CELLS, FWHMS, THETAS, grid_table
from trials.teanet import _JointTrainer, _prepare_data, cached_lorentz
from trials.teanet_config import classifier_options, lorentz_settings, separate_unet_epochs, unet_options

optuna.logging.set_verbosity(optuna.logging.WARNING)
GAMMA, SYNTHETIC = load_study("teanet_gamma"), load_study("teanet_synthetic")


def ask(study, n: int, fixed: dict | None = None) -> list[dict]:
    """n trials of a study's space the way Ray's OptunaSearch asks them."""
    from ray.tune.search.optuna.optuna_search import _OptunaTrialSuggestCaptor

    optuna_study = optuna.create_study(direction="maximize")
    params = []
    for _ in range(n):
        trial = optuna_study.ask()
        study.define_space(_OptunaTrialSuggestCaptor(trial), fixed or {})
        params.append(dict(trial.params))
        optuna_study.tell(trial, 0.5)
    return params


# --- teanet_synthetic ------------------------------------------------------------------------------

def test_forty_trials_are_the_forty_cells_once():
    keys = ("data.theta", "data.fwhm_low", "data.fwhm_high", "method")
    cells = [tuple(p[key] for key in keys) for p in ask(SYNTHETIC, 40)]
    assert len(set(cells)) == CELLS == 40
    assert {c[:3] for c in cells} == {(t, low, high) for t in THETAS for low, high in FWHMS}
    assert SYNTHETIC.budgets["quick"].trials == 40 and len(SYNTHETIC.reproduction) == 40
    assert {row.label for row in SYNTHETIC.reproduction} == {
        f"ϑ={t:.3g} FWHM {low:g}–{high:g} {m}" for t, low, high, m in cells}


def test_a_fixed_method_leaves_the_twenty_cells():
    params = ask(SYNTHETIC, 20, {"method": "teanet"})
    assert len({(p["data.theta"], p["data.fwhm_low"]) for p in params}) == 20
    assert all("method" not in p for p in params)


def test_the_grid_table_pairs_the_methods_over_the_test_spectra():
    teanet = np.array([1, 1, 1, 0, 1, 1, 0, 1], float)
    cnn = np.array([1, 0, 1, 0, 0, 1, 0, 0], float)
    cells = {(round(10.0, 6), 0.0, "teanet"): [teanet], (round(10.0, 6), 0.0, "cnn_full"): [cnn]}
    lines = grid_table(cells).splitlines()
    assert len(lines) == 1 + 20
    first = lines[1].split()
    diff = teanet - cnn
    assert first[:2] == ["10", "0–50"]
    assert [float(v) for v in first[2:6]] == pytest.approx(
        [75.0, 37.5, 37.5, 100 * diff.std(ddof=1) / np.sqrt(8)], abs=0.005)
    assert first[6] == "8"
    assert all("(missing)" in line for line in lines[2:])


# --- teanet_gamma -----------------------------------------------------------------------------------

def test_gamma_space_searches_what_the_issue_names():
    params = ask(GAMMA, 40)
    keys = set().union(*params)
    assert keys == {"loss.gamma", "train.lr_unet", "train.lr_classifier", "mask.copies", "loss.recon",
                    "train.training", "train.schedule"}
    assert all(5 <= p["mask.copies"] <= 20 and 0 < p.get("loss.gamma", 0.5) < 1 for p in params)
    for key in ("train.schedule", "loss.gamma"):  # joint training only (γ has no effect trained separately)
        assert all((key in p) == (p["train.training"] == "joint") for p in params), key


def test_reproduce_is_table5_beside_the_paper():
    rows = {row.label: row for row in GAMMA.reproduction}
    assert set(rows) == {f"{t} ×{c}" for t in ("joint", "separate") for c in (5, 10, 20)}
    assert rows["joint ×10"].reference["rruff_ir_mean"] == 90.07
    assert rows["separate ×20"].config["train.training"] == "separate"
    assert rows["separate ×20"].config["mask.copies"] == 20


def test_separate_training_trains_the_unet_alone_then_the_classifier_alone():
    config = GAMMA.config_for("smoke", {"train.training": "separate", "train.epochs": 4,
                                        "eval.protocol": "split"})
    assert separate_unet_epochs(config) == 2
    torch.manual_seed(0)
    unet = create_model("teanet_unet", **unet_options(config))
    classifier = create_model(config["model.classifier"], **classifier_options(config))
    trainer = _JointTrainer(config, unet, classifier)
    data = _prepare_data(config, cached_lorentz(lorentz_settings(config)), "cpu")
    changed = collections.defaultdict(list)
    for epoch in range(4):
        before = {name: [p.detach().clone() for p in net.parameters()] for name, net in
                  (("unet", unet), ("classifier", classifier))}
        trainer.train_epoch(epoch, data, torch.Generator().manual_seed(epoch))
        for name, net in (("unet", unet), ("classifier", classifier)):
            after = list(net.parameters())
            changed[name].append(any(not torch.equal(b, p) for b, p in zip(before[name], after, strict=True)))
    assert changed["unet"] == [True, True, False, False]
    assert changed["classifier"] == [False, False, True, True]
    assert [trainer.phase(e) for e in range(4)] == ["unet_alone", "unet_alone", "classifier", "classifier"]


@pytest.mark.parametrize("name", ["teanet_gamma", "teanet_synthetic", "teanet_baselines"])
def test_show_lists_the_space_of_each_new_study(name):
    from platform.describe import show

    text = show(load_study(name))
    expected = {"teanet_gamma": "when train.training = separate: train.lr_unet float",
                "teanet_synthetic": "data.theta one of 10.0",
                "teanet_baselines": "when method = knn: knn.k int [1, 10]"}[name]
    assert expected in text
