"""One conformance test that every task in ``trials.trainable.TASKS`` runs through (the trial contract,
trials/contract.py): each task's trial function, on the smoke config of every study that uses it, at
3 epochs, in-process (no Ray). Add a task, get this test. Then ``stop_reason`` on hand-made reports."""

from __future__ import annotations

import math

import pytest

from search_spaces import list_studies, load_study
from trials.contract import (
    COMPLETED,
    EVERY_REPORT,
    OWN_RULE,
    SCHEDULER,
    STOP_REASONS,
    TIME_BUDGET,
    stop_reason,
)
from trials.trainable import TASKS, trial_function

EPOCHS = 3
STUDIES = {name: load_study(name) for name in list_studies()}

# Result columns a trial may leave out of a report, and why. HED's boundary_error exists only where the
# series knows its transition and a boundary was found (trials/hed.py): the smoke binned FCNN, for one,
# labels the whole series one class in its first epochs; once logged, an epoch that lost the boundary
# reports NaN (so the run's latest value is not stale).
MAY_BE_ABSENT = {"boundary_error"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def test_every_study_names_a_known_task():
    for name, study in STUDIES.items():
        assert study.task in TASKS, name


def _check_report_values(report: dict, last: bool, where: str) -> None:
    for key, value in report.items():
        if key == "stop_reason":
            assert value == OWN_RULE and last, f"{where}: stop_reason {value!r}, only own_rule in the last"
            continue
        plain = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in MAY_BE_ABSENT and plain and math.isnan(value):
            continue
        assert plain and math.isfinite(value), f"{where}: {key} = {value!r} is not a finite plain number"


def _collector(reports: list[dict]):
    """A report callable keeping the very dicts reported (artifacts, which any report may carry, aside)."""
    return lambda metrics, artifacts=None: reports.append(metrics)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_task_keeps_the_trial_contract(task):
    studies = [study for study in STUDIES.values() if study.task == task]
    assert studies, f"no study runs task {task!r}: nothing checks it"
    for study in studies:
        config = study.config_for("smoke", {study.epochs_key: EPOCHS})
        reports: list[dict] = []  # the very dicts reported: a trial that reuses one shows it here
        result = trial_function(task)(config, _collector(reports))

        where = study.name
        assert reports, f"{where}: no report"
        epochs = [report.get("epochs") for report in reports]
        assert epochs == list(range(1, len(reports) + 1)), f"{where}: one report per epoch: {epochs}"
        if reports[-1].get("stop_reason") == OWN_RULE:
            assert len(reports) < EPOCHS, where
        else:
            assert len(reports) == EPOCHS, f"{where}: {len(reports)} reports of {EPOCHS} epochs"

        expected = {*EVERY_REPORT, study.objective.metric, *set(study.result_columns) - MAY_BE_ABSENT}
        for i, report in enumerate(reports):
            at = f"{where}, epoch {i + 1}"
            assert isinstance(report, dict), at
            _check_report_values(report, last=i == len(reports) - 1, where=at)
            assert not expected - set(report), f"{at}: missing {sorted(expected - set(report))}"
            assert report["planned_epochs"] == config[study.epochs_key] == EPOCHS, at
            assert report["progress"] == pytest.approx(report["epochs"] / report["planned_epochs"]), at
            assert report["peak_memory_mb"] >= 0, at
            assert isinstance(report["trainable_params"], int) and report["trainable_params"] > 0, at
        times = [report["train_time_s"] for report in reports]
        assert times == sorted(times) and times[0] >= 0, f"{where}: train_time_s {times}"
        assert len({report["trainable_params"] for report in reports}) == 1, where
        assert result == reports[-1], f"{where}: the returned dict is not the last report"
        assert stop_reason(result) in (COMPLETED, OWN_RULE), where


# --- trials.contract.stop_reason -----------------------------------------------------------------

@pytest.mark.parametrize(("last_report", "reason"), [
    ({"epochs": 3, "planned_epochs": 3, "progress": 1.0}, COMPLETED),
    ({"epochs": 1, "planned_epochs": 3, "progress": 1 / 3}, SCHEDULER),
    ({"epochs": 2, "planned_epochs": 3, "stop_reason": OWN_RULE}, OWN_RULE),
    (None, TIME_BUDGET),  # the trainable never started it: no report at all
    ({}, TIME_BUDGET),
    ({"node_id": "abc", "device": "cpu"}, TIME_BUDGET),  # Tune's own keys, no epochs
], ids=["all planned epochs", "stopped before", "own rule", "no report", "empty", "no epochs key"])
def test_stop_reason_reads_the_last_report(last_report, reason):
    assert stop_reason(last_report) == reason
    assert reason in STOP_REASONS
