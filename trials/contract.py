"""What every trial function promises the driver, whatever its task (DESIGN.md, data flow step 4).

A trial function ``run_trial(config, report, **extra) -> dict`` calls ``report(metrics)`` once per
epoch with a complete snapshot (so a trial the scheduler stops still has its result) and returns the
last snapshot. Every snapshot carries :data:`EVERY_REPORT`; ``progress`` (epochs / planned_epochs) is
what the scheduler compares trials on, so a 5-epoch and a 300-epoch model meet at the same rungs.

Why a trial ended is read from its last report (:func:`stop_reason`): a trial that ends before its
planned epochs by a rule of its own (the binned FCNN's loss / accuracy thresholds) says so with
``stop_reason = "own_rule"`` in its last report. A trial that reported nothing at all was one the
trainable did not start because the search's time budget ran out while it waited for resources.

**Checkpoints** (so that a trial whose node is lost loses nothing). A trial function that checkpoints
also takes ``resume_from`` and ``report_state``:

- ``report_state=True``: every report is ``report(metrics, state=state)``. ``state`` is everything the
  trial carries from one epoch to the next (weights, optimisers, LR schedules, every random generator,
  the selection / stop-rule state, the measured ``train_time_s`` and ``peak_memory_mb``, the last
  metrics), as plain dicts, lists, numbers, strings and tensors, made by :func:`trial_state` (which
  adds the epochs done and the config's digest). Its tensors may be the trial's live ones: save or copy
  the state during the call (the trainable ``torch.save`` s it into a Tune checkpoint there).
- ``resume_from=state``: the trial rebuilds data and models from its config, loads the state and
  continues at the next epoch: its first report is epoch ``state["epochs"] + 1`` (no epoch reported
  twice), ``train_time_s`` continues from the saved figure, and the results are those of an
  uninterrupted run. A state of another config is refused (:func:`resume_epochs`).

**Artifacts**: any report may be ``report(metrics, artifacts={"name.png": b"..."})`` (plain file names,
bytes): the files become artifacts of the trial's MLflow run (trials.trainable). Send them once, with the
last report, not every epoch.

Every report that reaches Tune also carries ``node_id`` and ``device`` (added by the trainable).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

EVERY_REPORT = ("epochs", "planned_epochs", "progress", "train_time_s", "peak_memory_mb", "trainable_params")

# Why a trial ended (the ``stop_reason`` tag of its MLflow run).
COMPLETED, OWN_RULE, SCHEDULER, TIME_BUDGET, INTERRUPTED, FAILED = (
    "completed", "own_rule", "scheduler", "time_budget", "interrupted", "failed")
STOP_REASONS = (COMPLETED, OWN_RULE, SCHEDULER, TIME_BUDGET, INTERRUPTED, FAILED)


def epoch_progress(epochs: int, planned_epochs: int) -> dict[str, float]:
    """The bookkeeping keys of a report after ``epochs`` of ``planned_epochs``."""
    return {"epochs": epochs, "planned_epochs": planned_epochs, "progress": epochs / planned_epochs}


def stop_reason(last_report: Mapping[str, Any] | None) -> str:
    """Why a trial that ended without an error ended, from its last report: it never started (time
    budget), it said so itself (own rule), it ran all its planned epochs, or else the scheduler
    stopped it."""
    report = last_report or {}
    epochs, planned = report.get("epochs"), report.get("planned_epochs")
    if epochs is None:
        return TIME_BUDGET
    if report.get("stop_reason") == OWN_RULE:
        return OWN_RULE
    if planned is not None and epochs >= planned:
        return COMPLETED
    return SCHEDULER


class StateMismatchError(ValueError):
    """A trial was asked to resume from the state of another config."""


def config_digest(config: Mapping[str, Any]) -> str:
    """A digest of a complete config: the identity a trial's state is checked against."""
    return hashlib.sha256(json.dumps(dict(config), sort_keys=True, default=str).encode()).hexdigest()


def trial_state(config: Mapping[str, Any], epochs: int, **parts: Any) -> dict[str, Any]:
    """A trial's state after ``epochs`` epochs: the task's ``parts`` and the bookkeeping keys."""
    return {"epochs": epochs, "config_digest": config_digest(config), **parts}


def resume_epochs(state: Mapping[str, Any] | None, config: Mapping[str, Any]) -> int:
    """Epochs already done by the trial ``state`` is of (0 without one); a state of another config is
    an error, not a silent mix of two trials."""
    if state is None:
        return 0
    if state.get("config_digest") != config_digest(config):
        raise StateMismatchError("the checkpoint to resume from was made by a trial of another config")
    return int(state["epochs"])
