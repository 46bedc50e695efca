"""Building the Tune run of a study (platform.tuner): seeds, schedulers and the Optuna searcher over the
real teanet_masks space, with real Optuna storage. The searcher's hooks are called as Tune calls them;
no Ray is started."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from platform.tuner import (
    StudySearcher,
    derive_seed,
    grid_param_space,
    make_grid,
    make_sampler,
    make_scheduler,
    make_searcher,
)
from search_spaces import load_study
from trials.config import check_keys

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = load_study("teanet_masks")
PLANNED = 8
State = optuna.trial.TrialState


def searcher(storage=None, fixed=None, name="teanet_masks-smoke-search-1", seed=1,
             deadline=None) -> StudySearcher:
    return make_searcher(STUDY, fixed or {}, storage or optuna.storages.InMemoryStorage(), name, seed,
                         deadline)


def result(epochs: int, value: float | None, **more) -> dict:
    """A Tune result as the searcher receives it (the trial contract's keys, flattened config)."""
    out = {"epochs": epochs, "planned_epochs": PLANNED, "progress": epochs / PLANNED,
           "training_iteration": epochs, "val_loss": 1.0 / epochs, "config/train.epochs": PLANNED, **more}
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
    scheduler, text = make_scheduler("fifo", STUDY)
    assert type(scheduler) is FIFOScheduler and text == "FIFO"


@pytest.mark.parametrize("study_name", ["teanet_masks", "hed_architectures", "hed_bins"])
def test_asha_schedules_on_the_fraction_of_each_trials_planned_epochs(study_name):
    study = load_study(study_name)
    scheduler, text = make_scheduler("asha", study)
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._time_attr == "progress" and scheduler._max_t == 1.0
    assert "time_attr=progress" in text and f"{study.grace_fraction:.3g}" in text


def test_asha_stops_a_short_model_at_its_first_rung_as_it_would_a_long_one():
    """hed_architectures plans 2-600 epochs per model: the first rung must fall inside a 5-epoch trial
    (before, ASHA's first rung was at 75 epochs and stopped nothing)."""
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    scheduler, _ = make_scheduler("asha", load_study("hed_architectures"))
    scheduler.set_search_properties("confidence_score", "max")
    long_trials = [Trial("fn", trial_id=f"long{i}", stub=True) for i in range(4)]
    short = Trial("fn", trial_id="short", stub=True)
    for trial in [*long_trials, short]:
        scheduler.on_trial_add(None, trial)
    for i, trial in enumerate(long_trials):  # 300-epoch trials, at 40 of 300 epochs
        scheduler.on_trial_result(None, trial, {"progress": 40 / 300, "confidence_score": 0.9 + i / 100})
    # A 5-epoch trial that is poor after its first epoch (progress 0.2, past the 1/9 rung) is stopped.
    decision = scheduler.on_trial_result(None, short, {"progress": 1 / 5, "confidence_score": 0.1})
    assert decision == TrialScheduler.STOP


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


def test_trial_without_the_metric_fails_without_a_value():
    s = searcher()
    s.suggest("t1")
    s.on_trial_complete("t1", result(2, None))
    trial = only_trial(s)
    assert trial.state == State.FAIL and trial.value is None
    assert not s._ot_study.get_trials(states=(State.WAITING,)), "not queued again"


def test_trial_ended_by_its_own_rule_is_complete_not_pruned():
    """The binned FCNN stops itself once trained (loss / accuracy thresholds): a finished trial, so
    TPE must rank it among complete ones (it used to be told PRUNED)."""
    s = searcher()
    s.suggest("t1")
    s.on_trial_result("t1", result(2, 0.5))
    s.on_trial_complete("t1", result(3, 0.9, stop_reason="own_rule"))
    trial = only_trial(s)
    assert trial.state == State.COMPLETE and trial.value == 0.9


def test_trial_that_never_started_fails_and_is_queued_to_run_again():
    """A trial that waited for resources past the time budget returns without a report."""
    s = searcher()
    params = s.suggest("t1")
    s.on_trial_complete("t1", {"done": True, "config/train.epochs": PLANNED})
    first, waiting = s._ot_study.get_trials(deepcopy=False)
    assert first.state == State.FAIL and first.value is None
    assert waiting.state == State.WAITING and waiting.system_attrs["fixed_params"] == params


def test_no_suggestion_after_the_deadline():
    import time

    from ray.tune.search import Searcher

    assert searcher(deadline=time.time() + 60).suggest("t1") not in (None, Searcher.FINISHED)
    late = searcher(deadline=time.time() - 1)
    assert late.suggest("t2") == Searcher.FINISHED
    assert late._ot_study.trials == [], "no Optuna trial asked for either"


def _noop(config):
    return None


def test_grid_stops_handing_out_rows_after_the_deadline():
    import time

    rows = [{"a": 1}, {"a": 2}, {"a": 3}]
    on_time = make_grid(rows, 2, deadline=time.time() + 60)
    late = make_grid(rows, 2, deadline=time.time() - 1)
    for grid in (on_time, late):
        grid.add_configurations({"grid": {"run": _noop, "config": grid_param_space(rows), "num_samples": 3}})
    assert on_time.next_trial() is not None
    assert late.next_trial() is None and late.is_finished()


def test_grid_param_space_fits_every_row_so_tune_has_nothing_to_warn_about(caplog):
    """Each row's values are valid for the space (Tune warns 'Pre-set value ... is not equal' for every
    differing key otherwise: dozens of lines per --reproduce)."""
    import logging

    rows = [STUDY.grid_config("smoke", row, {}) for row in STUDY.reproduction]
    space = grid_param_space(rows)
    assert set(space) == set(rows[0])
    grid = make_grid(rows, 2)
    with caplog.at_level(logging.WARNING):
        grid.add_configurations({"grid": {"run": _noop, "config": space, "num_samples": len(rows)}})
        configs = [grid.next_trial().config for _ in range(2)]
    assert not [r for r in caplog.records if "Pre-set value" in r.getMessage()]
    assert configs[0] == rows[0] and configs[1] == rows[1]


def test_second_completion_changes_nothing():
    s = searcher()
    s.suggest("t1")
    s.on_trial_complete("t1", result(3, 0.6))
    s.on_trial_complete("t1", result(PLANNED, 0.9))  # a second call for the same trial
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


def test_a_multi_objective_searcher_pickles_and_tells_optuna_every_objective():
    """NSGA-II over two objectives: Tune pickles the searcher when it saves its state (Optuna 5's sampler
    holds a lock, hence our subclass); a finished trial is COMPLETE with both values, one that lacks an
    objective is FAIL."""
    import pickle

    from platform.tuner import NSGAIISampler

    objectives = [("val_accuracy", "max"), ("train_time_s", "min")]
    built = make_searcher(STUDY, {}, optuna.storages.InMemoryStorage(), "multi", 1, objectives=objectives,
                          trials=12)
    assert isinstance(built._sampler, NSGAIISampler) and built._sampler._population_size == 4
    pickle.loads(pickle.dumps(built))
    for trial_id in ("a", "b"):
        config = built.suggest(trial_id)
        check_keys(config, STUDY.fields)
    built.on_trial_complete("a", result(PLANNED, 0.8, train_time_s=12.0))
    built.on_trial_complete("b", result(PLANNED, None, train_time_s=3.0))
    trials = built._ot_study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [State.COMPLETE, State.FAIL]
    assert trials[0].values == [0.8, 12.0]
    assert built._ot_study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                          optuna.study.StudyDirection.MINIMIZE]
