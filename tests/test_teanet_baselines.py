"""teanet_baselines (issue 9, part 3): each method an equal share of the trials with its own settings,
the augmentations, the correlation classifier, every method through the trial contract, the summary
beside Table 3, and one search end to end."""

from __future__ import annotations

import collections

import numpy as np
import optuna
import pytest
import torch

from search_spaces import load_study
from search_spaces.teanet_baselines import methods_table
from spectra.masks import MaskScheme
from trials.augment import augment
from trials.baselines import run_trial
from trials.baselines_config import METHODS
from trials.contract import EVERY_REPORT
from trials.shallow import Correlation

STUDY = load_study("teanet_baselines")
OWN = {"teanet": {"loss.gamma", "train.lr_unet", "train.lr_classifier"}, "cnn_full": {"train.lr_classifier"},
       "cnn_partial": {"train.lr_classifier"}, "cutmix": {"train.lr_classifier"},
       "mixup": {"train.lr_classifier", "mixup.alpha"}, "knn": {"knn.k", "knn.weights"},
       "svm_linear": {"svm.c"}, "svm_rbf": {"svm.c", "svm.gamma"},
       "random_forest": {"forest.trees", "forest.max_depth", "forest.max_features"}, "correlation": set()}
optuna.logging.set_verbosity(optuna.logging.WARNING)


def ask(n: int, fixed: dict | None = None, as_ray: bool = False) -> list[dict]:
    """n trials of the space under the search's sampler (TPE, multivariate, grouped, constant liar),
    each told a value so TPE models the methods from the 11th trial on; ``as_ray``: through the
    wrapper Ray's OptunaSearch hands a define-by-run space."""
    from ray.tune.search.optuna.optuna_search import _OptunaTrialSuggestCaptor

    sampler = optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=0,
                                         n_startup_trials=10)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    params = []
    for i in range(n):
        trial = study.ask()
        STUDY.define_space(_OptunaTrialSuggestCaptor(trial) if as_ray else trial, fixed or {})
        params.append(dict(trial.params))
        study.tell(trial, float(np.sin(i)))
    return params


@pytest.mark.parametrize("as_ray", [False, True], ids=["optuna", "through Ray's wrapper"])
def test_each_method_gets_an_equal_share_with_its_own_settings(as_ray):
    params = ask(30, as_ray=as_ray)
    counts = collections.Counter(p["method"] for p in params)
    assert counts == {method: 3 for method in METHODS}
    for p in params:
        assert set(p) - {"method"} == OWN[p["method"]], p


def test_a_method_fixed_on_the_command_line_is_not_a_dimension():
    params = ask(4, {"method": "knn"})
    assert all("method" not in p and set(p) == OWN["knn"] for p in params)


# --- augmentations and the correlation classifier -------------------------------------------------

X = np.stack([np.full(10, 1.0), np.full(10, 2.0), np.full(10, 3.0)]).astype(np.float32)
Y = np.array([0, 1, 2])
MS3 = MaskScheme("MS3", tau=0.3)


def test_cutmix_fills_the_region_from_another_spectrum_and_mixes_labels_by_area():
    copies, targets = augment("cutmix", X, Y, 3, 4, np.random.default_rng(0), MS3, -1.0, 0.2)
    assert copies.shape == (12, 10) and np.allclose(targets.sum(axis=1), 1)
    for row, target, source in zip(copies, targets, np.repeat(Y, 4), strict=True):
        other = [v for v in np.unique(row) if v != source + 1]
        assert len(other) == 1, "one partner, never itself"
        assert np.count_nonzero(row != source + 1) == 3  # τ = 0.3 of 10 points
        assert target[source] == pytest.approx(0.7) and target[int(other[0]) - 1] == pytest.approx(0.3)


def test_mixup_mixes_spectra_and_labels_by_the_same_weight():
    copies, targets = augment("mixup", X, Y, 3, 5, np.random.default_rng(1), MS3, -1.0, 0.4)
    for row, target, source in zip(copies, targets, np.repeat(Y, 5), strict=True):
        assert np.allclose(row, row[0]), "a constant spectrum mixed with another stays constant"
        assert np.isclose(row[0], target @ np.array([1.0, 2.0, 3.0]), atol=1e-5)
        assert target[source] >= 0 and np.isclose(target.sum(), 1)


def test_cnn_partial_is_the_masked_copies_with_their_own_labels():
    copies, targets = augment("cnn_partial", X, Y, 3, 2, np.random.default_rng(2), MS3, -1.0, 0.2)
    assert (np.count_nonzero(copies == -1, axis=1) == 3).all()
    assert targets.argmax(axis=1).tolist() == [0, 0, 1, 1, 2, 2] and (targets.max(axis=1) == 1).all()


def test_correlation_picks_the_class_of_the_most_correlated_spectrum():
    points = np.linspace(0, 6, 50)
    train = np.stack([np.sin(points), np.cos(points), points])
    model = Correlation().fit(train, np.array([7, 8, 9]))
    queries = np.stack([3 * np.cos(points) + 5, 0.1 * points - 2, np.sin(points) + 0.01 * points])
    assert model.predict(queries).tolist() == [8, 9, 7]


# --- every method through the trial contract ------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_the_protocol_and_reports_the_contract(method):
    torch.set_num_threads(1)
    reports = []
    config = STUDY.config_for("smoke", {"method": method, "train.epochs": 1})
    result = run_trial(config, lambda metrics, **extra: reports.append((metrics, extra)))
    assert [m["epochs"] for m, _ in reports] == [1, 2]  # two repeats at smoke
    assert set(EVERY_REPORT) <= set(result)
    for key in ("accuracy_mean", "accuracy_std", "val_accuracy_mean", "val_accuracy_std"):
        assert 0 <= result[key] <= 1
    assert "test_predictions.csv" in reports[-1][1]["artifacts"]


@pytest.mark.parametrize("method", ["cnn_partial", "knn"])
def test_a_resumed_baseline_continues_at_the_next_repeat_with_the_same_results(method):
    torch.set_num_threads(1)
    config = STUDY.config_for("smoke", {"method": method, "train.epochs": 1, "eval.repeats": 3})
    states, reports = [], []

    def report(metrics, state=None, artifacts=None):
        reports.append(metrics)
        states.append(state)

    full = run_trial(config, report, report_state=True)
    assert [r["epochs"] for r in reports] == [1, 2, 3] and states[0]["epochs"] == 1
    if method == "cnn_partial":  # the classifier's weights, under an obvious key
        assert any(key.endswith("weight") for key in states[0]["classifier"])
    resumed = []
    result = run_trial(config, lambda metrics, **extra: resumed.append(metrics), resume_from=states[0],
                       report_state=True)
    assert [r["epochs"] for r in resumed] == [2, 3]
    for key in ("repeat_accuracy", "accuracy_mean", "accuracy_std", "val_accuracy_mean"):
        assert result[key] == full[key]


def test_the_summary_shows_each_methods_best_beside_table3():
    rows = [{"param:method": "knn", "val_accuracy_mean": v, "accuracy_mean": a, "accuracy_std": 0.01,
             "epochs": 3} for v, a in ((0.5, 0.4), (0.8, 0.7), (0.6, 0.9))]
    table = methods_table(rows).splitlines()
    (knn,) = [line for line in table if line.startswith("knn")]
    assert knn.split()[:6] == ["knn", "3", "3", "80.00", "70.00", "±"]  # the best by validation
    assert "79.32 ± 1.56" in knn  # Table 3's k-NN on RRUFF-IR
    assert any(line.startswith("dagan") and "not implemented" in line for line in table)


# --- end to end ------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.long
def test_a_smoke_search_trains_every_method_once_and_prints_them_beside_table3(workdir, ray_address):
    from tests.e2e_support import SMOKE, experiment_runs, search

    result = search([*SMOKE, "teanet_baselines", "--set", "train.epochs=1", "--scheduler", "fifo"],
                    workdir, ray_address, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    _, parent, children = experiment_runs(workdir, "teanet_baselines")
    assert sorted(c.data.params["method"] for c in children) == sorted(METHODS)
    assert all(c.info.status == "FINISHED" for c in children)
    assert "beside TeaNet Table 3" in result.stdout and "79.32 ± 1.56" in result.stdout
    artifacts = {a.path for a in workdir_client(workdir).list_artifacts(parent.info.run_id)}
    assert {"methods_vs_table3.txt", "best_trial_confusion.png"} <= artifacts


def workdir_client(workdir):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{workdir / 'runs' / 'mlflow.db'}")
