"""Building the Ray Tune run of a study: searcher, scheduler, resources, trainable.

The searcher is Optuna's TPE (multivariate, grouped for conditional spaces, constant liar so that
parallel trials do not all sample the same point) over the study's define-by-run space, its study
kept in an RDB under the search id; only trials the scheduler stopped are PRUNED for it
(:class:`StudySearcher`). ASHA schedules on the fraction of each trial's planned epochs.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from ray import tune
from ray.tune import PlacementGroupFactory
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search import Searcher
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from search_spaces import Study
from trials.contract import COMPLETED, OWN_RULE, SCHEDULER, TIME_BUDGET, stop_reason
from trials.trainable import run_study_trial


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from the search id (and the attempt, so a resumed search does not replay
    the start-up trials of the first attempt)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def make_sampler(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


class StudySearcher(OptunaSearch):
    """OptunaSearch that tells Optuna why each trial ended, stops suggesting once the search's time
    budget is spent, and exposes Optuna trial numbers.

    Stopped by the scheduler → PRUNED, with its last value as the final intermediate value (Ray's
    OptunaSearch would record it COMPLETE at its early value, teaching TPE that a short run is a
    finished one). Ended by its own rule (e.g. the binned FCNN's thresholds) → COMPLETE: it finished
    training. Never started (time budget) → FAIL, its parameters queued so a resumed search runs them.
    """

    def __init__(self, *args: Any, deadline: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def optuna_trial(self, trial_id: str) -> optuna.Trial | None:
        """The Optuna trial behind a Tune trial (its number and the params it suggested)."""
        return self._ot_trials.get(trial_id)

    def suggest(self, trial_id: str) -> dict | None:
        if self.deadline is not None and time.time() > self.deadline:
            return Searcher.FINISHED  # no trial starts after the budget; running ones finish
        return super().suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        if isinstance(self.metric, list):  # multi-objective: every trial runs to its end (FIFO)
            return self._complete_multi(trial_id, result)
        reason = stop_reason(result)
        value = (result or {}).get(self.metric)
        if reason in (COMPLETED, OWN_RULE) and value is not None:
            return super().on_trial_complete(trial_id, result, error)
        trial = self._ot_trials[trial_id]
        if reason == SCHEDULER and value is not None:
            trial.report(value, int(result["epochs"]))
            self._ot_study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:  # never started (time budget), or no value to tell
            self._ot_study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if reason == TIME_BUDGET and trial.params:  # a resumed search runs it
                self._ot_study.enqueue_trial(trial.params, skip_if_exists=False)
        self._completed_trials.add(trial_id)
        return None


    def _complete_multi(self, trial_id: str, result: dict | None) -> None:
        """COMPLETE with every objective's value; FAIL when one is missing (never started, or the trial
        did not record it), queued again for --resume when the time budget kept it from starting."""
        values = [(result or {}).get(metric) for metric in self.metric]
        if None not in values:
            return super().on_trial_complete(trial_id, result, False)
        trial = self._ot_trials[trial_id]
        self._ot_study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if stop_reason(result) == TIME_BUDGET and trial.params:
            self._ot_study.enqueue_trial(trial.params, skip_if_exists=False)
        self._completed_trials.add(trial_id)
        return None


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, picklable: Optuna 5's holds a threading lock, and Tune pickles the searcher
    (with its sampler) when it saves the experiment's state."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()


def population_size(trials: int) -> int:
    """NSGA-II's generation: a third of the search (4 to Optuna's default 50), so that a search of a few
    dozen trials has generations that learn from the ones before, not one random population."""
    return max(4, min(50, trials // 3))


def make_searcher(study: Study, fixed: Mapping[str, Any], storage: optuna.storages.BaseStorage,
                  study_name: str, seed: int, deadline: float | None = None,
                  objectives: Sequence[tuple[str, str]] | None = None, trials: int = 0) -> StudySearcher:
    """TPE over the study's objective; NSGA-II over ``objectives`` (several (metric, mode) pairs)."""
    space = functools.partial(_space, define_space=study.define_space, fixed=dict(fixed))
    if objectives:
        return StudySearcher(space=space, metric=[m for m, _ in objectives], mode=[d for _, d in objectives],
                             sampler=NSGAIISampler(population_size=population_size(trials), seed=seed),
                             study_name=study_name,
                             storage=storage, deadline=deadline)
    return StudySearcher(space=space, metric=study.objective.metric, mode=study.objective.mode,
                         sampler=make_sampler(seed), study_name=study_name, storage=storage,
                         deadline=deadline)


def _space(trial: Any, define_space: Any, fixed: dict[str, Any]) -> None:
    define_space(trial, fixed)


class GridSearch(BasicVariantGenerator):
    """A reproduction grid: each complete config is one trial; none starts after the deadline."""

    def __init__(self, *args: Any, deadline: float | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def next_trial(self) -> Any:
        if self.deadline is not None and time.time() > self.deadline:
            self.set_finished()
            return None
        return super().next_trial()


def make_grid(configs: Sequence[Mapping[str, Any]], max_concurrent: int,
              deadline: float | None = None) -> GridSearch:
    """The grid's points, through the same Tuner as a search."""
    return GridSearch(points_to_evaluate=[dict(c) for c in configs], max_concurrent=max_concurrent,
                      deadline=deadline)


def grid_param_space(configs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The param space a grid's points fill in: a key that is the same in every point is that value,
    one that differs is a choice among the grid's values (so Tune finds every point valid and has
    nothing to warn about)."""
    space: dict[str, Any] = {}
    for key in dict.fromkeys(key for config in configs for key in config):
        values = list(dict.fromkeys(config.get(key) for config in configs))
        space[key] = values[0] if len(values) == 1 else tune.choice(values)
    return space


# ASHA compares trials at fractions of their own planned epochs (the ``progress`` every trial reports,
# trials.contract), so a 5-epoch and a 300-epoch model meet at the same rungs.
REDUCTION_FACTOR = 3


def make_scheduler(kind: str, study: Study) -> tuple[FIFOScheduler, str]:
    """The scheduler and a one-line description of it (for the parent run's tags)."""
    if kind == "fifo":
        return FIFOScheduler(), "FIFO"
    grace = study.grace_fraction
    scheduler = ASHAScheduler(time_attr="progress", max_t=1.0, grace_period=grace,
                              reduction_factor=REDUCTION_FACTOR)
    rungs = ", ".join(f"{grace * REDUCTION_FACTOR**k:.3g}"
                      for k in range(8) if grace * REDUCTION_FACTOR**k < 1.0 - 1e-9)
    return scheduler, (f"ASHA(time_attr=progress (epochs / planned epochs), rungs at {rungs}, "
                       f"rf={REDUCTION_FACTOR})")


def trial_resources(study: Study, cpus: float, gpus: float) -> Any:
    """Resources of one trial, per config: CPUs, GPUs and, where a model needs GBs, memory (so Ray
    does not start two trials that together exhaust the node)."""

    def resources(config: Mapping[str, Any]) -> PlacementGroupFactory:
        bundle = {"CPU": cpus, "GPU": gpus}
        memory_gb = study.memory_gb(config)
        if memory_gb:
            bundle["memory"] = memory_gb * 1024**3
        return PlacementGroupFactory([bundle])

    return resources


def make_tuner(study: Study, param_space: Mapping[str, Any], search_alg: Any, scheduler: FIFOScheduler,
               num_samples: int, max_concurrent: int, resources: Any, storage_path: str,
               experiment_name: str, callbacks: list, deadline: float | None = None,
               data: Any = None, max_failures: int = 0) -> tune.Tuner:
    """The Tuner of a search or grid. The time budget is not Tune's ``time_budget_s`` (which stops
    running trials): the searcher stops suggesting at the deadline and running trials finish.
    A trial that fails (its node lost, say) is retried up to ``max_failures`` times from its latest
    checkpoint (trials checkpoint every epoch; the last two are kept, so a checkpoint being written
    when the node died still leaves the one before)."""
    trainable = tune.with_parameters(run_study_trial, task=study.task, data=data, deadline=deadline)
    trainable = tune.with_resources(trainable, resources)
    return tune.Tuner(
        trainable,
        param_space=dict(param_space),
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=num_samples,
            max_concurrent_trials=max_concurrent, reuse_actors=True,
            metric=study.objective.metric, mode=study.objective.mode,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=experiment_name, storage_path=storage_path, callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
