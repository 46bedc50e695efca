"""Building the Ray Tune run of a study: searcher, scheduler, resources, trainable.

The searcher is Optuna's TPE (multivariate, grouped for conditional spaces, constant liar so that
parallel trials do not all sample the same point) over the study's define-by-run space, its study
kept in an RDB under the search id. Trials the scheduler stops early are told to Optuna as PRUNED,
with their last value as the final intermediate value (Ray's OptunaSearch would record them COMPLETE
at their early value, teaching TPE that a short run is a finished one).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from ray import tune
from ray.tune import PlacementGroupFactory
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from models.trainable import run_study_trial
from search_spaces import Study


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from the search id (and the attempt, so a resumed search does not replay
    the start-up trials of the first attempt)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def make_sampler(seed: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


class StudySearcher(OptunaSearch):
    """OptunaSearch that tells early-stopped trials as PRUNED and exposes Optuna trial numbers."""

    def __init__(self, *args: Any, epochs_key: str, planned_epochs: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.epochs_key = epochs_key
        self.planned_epochs = planned_epochs

    def optuna_trial(self, trial_id: str) -> optuna.Trial | None:
        """The Optuna trial behind a Tune trial (its number and the params it suggested)."""
        return self._ot_trials.get(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or not result or trial_id in self._completed_trials:
            return super().on_trial_complete(trial_id, result, error)
        planned = _planned_epochs(result, self.epochs_key, self.planned_epochs)
        value = result.get(self.metric)
        if result.get("epochs", planned) >= planned or value is None:
            return super().on_trial_complete(trial_id, result, error)
        trial = self._ot_trials[trial_id]
        trial.report(value, int(result.get("training_iteration", result["epochs"])))
        self._ot_study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        self._completed_trials.add(trial_id)
        return None


def _planned_epochs(result: Mapping[str, Any], key: str, default: int) -> int:
    """The trial's epoch count from its result (Tune flattens it to ``config/<key>`` for searchers)."""
    if f"config/{key}" in result:
        return result[f"config/{key}"]
    return (result.get("config") or {}).get(key, default)


def make_searcher(study: Study, fixed: Mapping[str, Any], storage: optuna.storages.BaseStorage,
                  study_name: str, seed: int, planned_epochs: int) -> StudySearcher:
    space = functools.partial(_space, define_space=study.define_space, fixed=dict(fixed))
    return StudySearcher(space=space, metric=study.objective.metric, mode=study.objective.mode,
                         sampler=make_sampler(seed), study_name=study_name, storage=storage,
                         epochs_key=study.epochs_key, planned_epochs=planned_epochs)


def _space(trial: Any, define_space: Any, fixed: dict[str, Any]) -> None:
    define_space(trial, fixed)


def make_grid(configs: Sequence[Mapping[str, Any]], max_concurrent: int) -> BasicVariantGenerator:
    """A reproduction grid: each complete config is one trial, through the same Tuner."""
    return BasicVariantGenerator(points_to_evaluate=[dict(c) for c in configs], max_concurrent=max_concurrent)


def make_scheduler(kind: str, study: Study, max_epochs: int) -> tuple[FIFOScheduler, str]:
    """The scheduler and a one-line description of it (for the parent run's tags)."""
    if kind == "fifo":
        return FIFOScheduler(), "FIFO"
    grace = min(max_epochs, max(study.grace_epochs, max_epochs // 8))
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_epochs, grace_period=grace,
                              reduction_factor=3)
    return scheduler, f"ASHA(time_attr=training_iteration, max_t={max_epochs}, grace={grace}, rf=3)"


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
               experiment_name: str, callbacks: list, time_budget_s: float | None,
               data: Any = None) -> tune.Tuner:
    trainable = tune.with_parameters(run_study_trial, task=study.task, data=data)
    trainable = tune.with_resources(trainable, resources)
    return tune.Tuner(
        trainable,
        param_space=dict(param_space),
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=num_samples,
            max_concurrent_trials=max_concurrent, reuse_actors=True, time_budget_s=time_budget_s,
            metric=study.objective.metric, mode=study.objective.mode,
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=experiment_name, storage_path=storage_path, callbacks=callbacks, verbose=0,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
