"""Building the Tune run of a study (platform.tuner): seeds, schedulers and the Optuna searcher over the
real teanet_masks space, with real Optuna storage. The searcher's hooks are called as Tune calls them;
no Ray is started."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from models.config import check_keys
from platform.tuner import StudySearcher, derive_seed, make_sampler, make_scheduler, make_searcher
from search_spaces import load_study

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = load_study("teanet_masks")
PLANNED = 8
State = optuna.trial.TrialState


def searcher(storage=None, fixed=None, name="teanet_masks-smoke-search-1", seed=1) -> StudySearcher:
    return make_searcher(STUDY, fixed or {}, storage or optuna.storages.InMemoryStorage(), name, seed,
                         PLANNED)


def result(epochs: int, value: float | None, **more) -> dict:
    """A Tune result as the searcher receives it (flattened: the config under ``config/...``)."""
    out = {"epochs": epochs, "training_iteration": epochs, "val_loss": 1.0 / epochs,
           "config/train.epochs": PLANNED, **more}
    if value is not None:
        out["val_accuracy"] = value
    return out


def only_trial(s: StudySearcher) -> optuna.trial.FrozenTrial:
    (trial,) = s._ot_study.get_trials(deepcopy=False)
    return trial


# --- seeds and schedulers -----------------------------------------------------------------------
def test_derive_seed_is_stable_31_bit_and_differs_by_attempt():
    seed = derive_seed("teanet_masks-quick-search-20260101-000000", 0)
    assert seed == derive_seed("teanet_masks-quick-search-20260101-000000", 0)
    assert 0 <= seed < 2**31
    assert derive_seed("teanet_masks-quick-search-20260101-000000", 1) != seed
    assert derive_seed("teanet_masks-quick-search-20260101-000001", 0) != seed


def test_fifo_scheduler():
    scheduler, text = make_scheduler("fifo", STUDY, 30)
    assert type(scheduler) is FIFOScheduler and text == "FIFO"


@pytest.mark.parametrize(("max_epochs", "grace"), [(30, 4), (300, 37), (4, 4), (2, 2)])
def test_asha_scheduler_grace_between_the_study_floor_and_max_t(max_epochs, grace):
    scheduler, text = make_scheduler("asha", STUDY, max_epochs)
    assert isinstance(scheduler, ASHAScheduler)
    assert text == f"ASHA(time_attr=training_iteration, max_t={max_epochs}, grace={grace}, rf=3)"
    assert scheduler._max_t == max_epochs and scheduler._time_attr == "training_iteration"
    assert min(max_epochs, STUDY.grace_epochs) <= grace <= max_epochs


# --- the searcher -------------------------------------------------------------------------------
def test_sampler_is_multivariate_grouped_tpe_with_constant_liar():
    sampler = make_sampler(5)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._multivariate and sampler._group and sampler._constant_liar
    s = searcher()
    assert s._sampler is s._ot_study.sampler
    assert s._ot_study.sampler._constant_liar and s._ot_study.sampler._multivariate
    assert s.metric == "val_accuracy" and s.mode == "max"
    assert s._ot_study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert s.epochs_key == "train.epochs" and s.planned_epochs == PLANNED


def test_suggest_gives_valid_config_keys_never_a_fixed_one():
    fixed = {"loss.gamma": 0.5, "mask.fill": 0.0}
    s = searcher(fixed=fixed)
    for index in range(12):
        config = s.suggest(f"t{index}")
        assert config and set(config) <= set(STUDY.fields)
        assert not set(config) & set(fixed)
        check_keys(config, STUDY.fields)  # in bounds and of the fields' types
        STUDY.config_for("smoke", fixed, config)  # and a valid trial config with the rest
        assert s.optuna_trial(f"t{index}").params == config


def test_fixed_scheme_searches_only_its_branch():
    s = searcher(fixed={"mask.scheme": "MS3"})
    config = s.suggest("t1")
    assert set(config) == {"mask.tau", "loss.gamma", "mask.fill"}


def test_optuna_trial_gives_number_and_params():
    s = searcher()
    first, second = s.suggest("t1"), s.suggest("t2")
    assert (s.optuna_trial("t1").number, s.optuna_trial("t2").number) == (0, 1)
    assert s.optuna_trial("t1").params == first and s.optuna_trial("t2").params == second
    assert s.optuna_trial("unknown") is None


def test_early_stopped_trial_is_pruned_with_its_last_value_at_its_last_step():
    s = searcher()
    s.suggest("t1")
    s.on_trial_result("t1", result(1, 0.25))
    s.on_trial_result("t1", result(2, 0.5))
    # ASHA stopped it on its third result, which Tune then hands only to on_trial_complete.
    s.on_trial_complete("t1", result(3, 0.6))
    trial = only_trial(s)
    assert trial.state == State.PRUNED
    assert trial.intermediate_values == {1: 0.25, 2: 0.5, 3: 0.6}
    assert trial.value == 0.6


def test_trial_that_ran_every_epoch_is_complete():
    s = searcher()
    s.suggest("t1")
    s.on_trial_result("t1", result(PLANNED - 1, 0.5))
    s.on_trial_complete("t1", result(PLANNED, 0.75))
    trial = only_trial(s)
    assert trial.state == State.COMPLETE and trial.value == 0.75


def test_failed_trial_is_fail():
    s = searcher()
    s.suggest("t1")
    s.on_trial_result("t1", result(1, 0.25))
    s.on_trial_complete("t1", error=True)  # as Tune calls it on an error: no result
    assert only_trial(s).state == State.FAIL


def test_trial_without_the_metric_is_pruned_without_a_value():
    s = searcher()
    s.suggest("t1")
    s.on_trial_complete("t1", result(2, None))
    trial = only_trial(s)
    assert trial.state == State.PRUNED and trial.value is None


def test_second_completion_changes_nothing():
    s = searcher()
    s.suggest("t1")
    s.on_trial_complete("t1", result(3, 0.6))
    s.on_trial_complete("t1", result(PLANNED, 0.9))
    trial = only_trial(s)
    assert trial.state == State.PRUNED and trial.value == 0.6


def test_rdb_study_is_continued_by_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = searcher(optuna.storages.RDBStorage(url), seed=derive_seed("s", 0))
    first.suggest("a1")
    first.on_trial_complete("a1", result(PLANNED, 0.7))
    first.suggest("a2")
    first.on_trial_complete("a2", result(2, 0.4))

    again = searcher(optuna.storages.RDBStorage(url), seed=derive_seed("s", 1))
    again.suggest("b1")
    assert again.optuna_trial("b1").number == 2
    trials = optuna.load_study(study_name="teanet_masks-smoke-search-1", storage=url).trials
    assert [t.state for t in trials] == [State.COMPLETE, State.PRUNED, State.RUNNING]
    assert trials[1].intermediate_values == {2: 0.4}
