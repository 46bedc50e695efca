"""The MLflow records of a search (platform.tracking) and picking a search up again (platform.resume),
on a real MLflow SQLite store (a copy of the session's pre-migrated one) and a real Optuna RDB. Tune's
hooks are driven by hand with small fake trials: no Ray is started."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any

import optuna
import pytest

from platform.options import UsageError
from platform.resume import ORPHANED, close_orphaned_runs, fail_orphaned_trials, find_search, trials_done
from platform.tracking import (
    PARENT_TAG,
    TrialRecorder,
    child_runs,
    error_summary,
    error_text,
    numeric_metrics,
    open_experiment,
)
from search_spaces import load_study

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY = load_study("teanet_masks")
COMMON = {"study": "teanet_masks", "search_id": "teanet_masks-smoke-search-1", "kind": "search"}
TRACEBACK = """Failure # 1 (occurred at 2026-01-01_00-00-00)
ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1, actor_id=abc)
  File "/work/main/trials/teanet.py", line 200, in _train
    raise TrialDivergedError(f"loss became nan at epoch {epoch}")
trials.teanet.TrialDivergedError: loss became nan at epoch 3
"""


@dataclasses.dataclass
class FakeTrial:
    """What TrialRecorder reads of a Tune trial."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = dataclasses.field(default_factory=dict)
    error_file: str | None = None
    error: Any = None

    def get_error(self):
        return self.error


def smoke_config(**keys: Any) -> dict[str, Any]:
    return STUDY.config_for("smoke", {"train.epochs": 4, **keys})


def tune_result(epochs: int, val_accuracy: float, **more: Any) -> dict[str, Any]:
    """A result as Tune hands it to callbacks: the trial's metrics plus Tune's bookkeeping."""
    return {"val_accuracy": val_accuracy, "val_loss": 1.0 / epochs, "epochs": epochs, "planned_epochs": 4,
            "trainable_params": 1234, "node_id": "node-1", "device": "cpu",
            "training_iteration": epochs, "time_total_s": 1.5 * epochs, "time_this_iter_s": 1.5,
            "timestamp": 1_700_000_000, "done": False, "trial_id": "ignored", "pid": 42,
            "date": "2026-01-01", "hostname": "h", "node_ip": "127.0.0.1", "config": {"a": 1},
            "time_since_restore": 1.0, "iterations_since_restore": epochs, "should_checkpoint": False,
            **more}


@pytest.fixture
def records(mlflow_client, tmp_path):
    """(client, experiment id, parent run id) of one search in a fresh store."""
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    parent = client.create_run(experiment_id, tags={**COMMON, "search_role": "parent"}, run_name="p")
    return client, experiment_id, parent.info.run_id


def recorder_for(records, optuna_trial=lambda trial_id: None) -> TrialRecorder:
    client, experiment_id, parent_id = records
    return TrialRecorder(client, experiment_id, parent_id, COMMON, optuna_trial)


def the_run(records, recorder: TrialRecorder, trial_id: str):
    return records[0].get_run(recorder.run_ids[trial_id])


# --- helpers ------------------------------------------------------------------------------------
def test_open_experiment_once_with_its_artifact_location(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "art"))
    assert open_experiment(client, "teanet_masks", str(tmp_path / "elsewhere")) == experiment_id
    location = client.get_experiment(experiment_id).artifact_location
    assert location.endswith(f"{tmp_path}/art/teanet_masks")


def test_numeric_metrics_leave_out_tune_bookkeeping_and_non_numbers():
    result = tune_result(3, 0.5, flag=True, name="x", bad=float("nan"), worse=float("inf"))
    assert numeric_metrics(result) == {"val_accuracy": 0.5, "val_loss": 1 / 3, "epochs": 3.0,
                                       "planned_epochs": 4.0, "trainable_params": 1234.0}
    assert all(isinstance(v, float) for v in numeric_metrics(result).values())


@pytest.mark.parametrize(("text", "summary"), [
    (TRACEBACK, "trials.teanet.TrialDivergedError: loss became nan at epoch 3"),
    ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
     '    raise ValueError("boom")\nValueError: boom\n', "ValueError: boom"),
    ("RuntimeError: first\n\nDuring handling...\nKeyError: 'k'\n", "KeyError: 'k'"),
    ("something odd\nhappened here\n", "happened here"),
    ("", "unknown error"),
])
def test_error_summary_is_the_last_named_exception(text, summary):
    assert error_summary(text) == summary


def test_error_summary_fits_a_tag():
    assert len(error_summary("ValueError: " + "x" * 10_000)) == 4000


def test_error_text_prefers_the_error_file(tmp_path):
    path = tmp_path / "error.txt"
    path.write_text(TRACEBACK)
    assert error_text(FakeTrial("t", {}, error_file=str(path), error=ValueError("short"))) == TRACEBACK
    missing = FakeTrial("t", {}, error_file=str(tmp_path / "gone.txt"), error=ValueError("short"))
    assert error_text(missing) == "short"
    assert error_text(FakeTrial("t", {})) == "unknown error"


# --- TrialRecorder ------------------------------------------------------------------------------
def test_trial_start_creates_a_nested_run_with_params_and_tags(records):
    optuna_trials = {"t1": types.SimpleNamespace(number=7, params={"mask.scheme": "MS3", "loss.gamma": 0.2})}
    recorder = recorder_for(records, optuna_trials.get)
    config = {**smoke_config(**{"mask.scheme": "MS3", "loss.gamma": 0.2}), "_note": "driver only"}
    recorder.on_trial_start(0, [], FakeTrial("t1", config))
    run = the_run(records, recorder, "t1")
    assert run.info.status == "RUNNING"
    assert run.info.experiment_id == records[1]
    tags = run.data.tags
    assert tags[PARENT_TAG] == records[2]
    assert tags["trial_id"] == "t1" and tags["early_stopped"] == "false"
    assert {k: tags[k] for k in COMMON} == COMMON
    assert tags["optuna_trial_number"] == "7" and tags["searched_keys"] == "loss.gamma,mask.scheme"
    assert tags["mlflow.runName"] == "trial-0001" == recorder.name("t1")
    assert "grid_row" not in tags
    expected = {k: str(v) for k, v in config.items() if not k.startswith("_")}
    assert run.data.params == expected, "params: the config minus the driver's _ notes"
    assert len(expected) > 40


def test_grid_trial_is_tagged_with_its_row_and_has_no_optuna_tags(records):
    recorder = recorder_for(records)
    recorder.on_trial_start(0, [], FakeTrial("g1", {**smoke_config(), "_row": "MS3 tau=0.5"}))
    run = the_run(records, recorder, "g1")
    assert run.data.tags["grid_row"] == "MS3 tau=0.5"
    assert "_row" not in run.data.params
    assert "optuna_trial_number" not in run.data.tags and "searched_keys" not in run.data.tags


def test_results_are_logged_at_their_epoch(records):
    client = records[0]
    recorder = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    recorder.on_trial_start(0, [], trial)
    for epoch, value in ((1, 0.25), (2, 0.5), (3, 0.75)):
        recorder.on_trial_result(0, [], trial, tune_result(epoch, value))
    recorder.on_experiment_end([])  # writes what the once-a-second batching still holds
    run = the_run(records, recorder, "t1")
    assert set(run.data.metrics) == {"val_accuracy", "val_loss", "epochs", "planned_epochs",
                                     "trainable_params"}
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.25), (2, 0.5), (3, 0.75)]
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "epochs")) == [1, 2, 3]
    assert run.data.tags["node_id"] == "node-1" and run.data.tags["device"] == "cpu"


def test_a_nan_overwrites_a_value_that_no_longer_holds(records):
    """A boundary_error whose boundary is gone at a later epoch is reported NaN (trials/hed.py): the run
    must show NaN as its latest value, not the old number (CI once caught the old number kept)."""
    import math

    client = records[0]
    recorder = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    recorder.on_trial_start(0, [], trial)
    for epoch, error in ((1, 36.0), (2, float("nan"))):
        recorder.on_trial_result(0, [], trial, tune_result(epoch, 0.5, boundary_error=error))
    recorder.on_experiment_end([])
    run = the_run(records, recorder, "t1")
    assert math.isnan(run.data.metrics["boundary_error"])
    history = client.get_metric_history(run.info.run_id, "boundary_error")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fast_results_are_written_together_and_every_one_before_the_run_closes(records, monkeypatch):
    """One MLflow write per result caps the driver near 35-60 results/s: a run's results are written
    at most once a second, in one batch, and all of them before the run is closed."""
    import platform.tracking

    clock = FakeClock()
    monkeypatch.setattr(platform.tracking.time, "monotonic", clock)
    client = records[0]
    recorder = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    recorder.on_trial_start(0, [], trial)
    writes = []
    original = client.log_batch
    monkeypatch.setattr(client, "log_batch", lambda *a, **k: (writes.append(k), original(*a, **k))[1])

    def steps() -> list[int]:
        return sorted(m.step for m in client.get_metric_history(recorder.run_ids["t1"], "epochs"))

    recorder.on_trial_result(0, [], trial, tune_result(1, 0.25))  # the first: written at once
    assert steps() == [1] and len(writes) == 1
    for epoch in (2, 3):
        clock.now += 0.1
        recorder.on_trial_result(0, [], trial, tune_result(epoch, 0.5))
    recorder.on_step_end(0, [])
    assert steps() == [1], "within the second: held back"
    clock.now += 1.0
    recorder.on_step_end(0, [])  # Tune's loop: due now, even though the trial reports nothing new
    assert steps() == [1, 2, 3] and len(writes) == 2, "both held results in one write"
    clock.now += 0.1
    recorder.on_trial_result(0, [], trial, tune_result(4, 0.75, done=True))
    trial.last_result = {"epochs": 4, "planned_epochs": 4}
    recorder.on_trial_complete(0, [], trial)
    run = client.get_run(recorder.run_ids["t1"])
    assert steps() == [1, 2, 3, 4] and run.info.status == "FINISHED"
    assert run.data.metrics["val_accuracy"] == 0.75


def test_result_of_an_unknown_trial_is_ignored(records):
    recorder = recorder_for(records)
    recorder.on_trial_result(0, [], FakeTrial("nobody", smoke_config()), tune_result(1, 0.5))
    assert child_runs(records[0], records[1], records[2]) == []


@pytest.mark.parametrize(("last_report", "status", "reason"), [
    ({"epochs": 4}, "FINISHED", "completed"),
    ({"epochs": 2}, "FINISHED", "scheduler"),
    ({"epochs": 2, "stop_reason": "own_rule"}, "FINISHED", "own_rule"),
])
def test_complete_finishes_the_run_and_says_why_it_ended(records, last_report, status, reason):
    recorder = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())  # train.epochs = 4
    recorder.on_trial_start(0, [], trial)
    trial.last_result = tune_result(last_report.pop("epochs"), 0.5, **last_report)
    recorder.on_trial_result(0, [], trial, trial.last_result)
    recorder.on_trial_complete(0, [], trial)
    run = the_run(records, recorder, "t1")
    assert run.info.status == status
    assert run.data.tags["stop_reason"] == reason
    assert run.data.tags["early_stopped"] == str(reason == "scheduler").lower(), "only the scheduler's"
    assert recorder.open_runs == set()


def test_a_trial_that_never_started_is_killed_for_the_time_budget(records):
    recorder = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    recorder.on_trial_start(0, [], trial)
    trial.last_result = {"done": True, "training_iteration": 0}  # the trainable returned, no report
    recorder.on_trial_complete(0, [], trial)
    run = the_run(records, recorder, "t1")
    assert run.info.status == "KILLED", "it runs again on --resume"
    assert run.data.tags["stop_reason"] == "time_budget"


def test_interrupted_and_failed_trials_say_so(records, tmp_path):
    recorder = recorder_for(records)
    running, failing = FakeTrial("t1", smoke_config()), FakeTrial("t2", smoke_config())
    for trial in (running, failing):
        recorder.on_trial_start(0, [], trial)
    failing.error = ValueError("boom")
    recorder.on_trial_error(0, [], failing)
    recorder.close_open_runs("KILLED")
    assert the_run(records, recorder, "t1").data.tags["stop_reason"] == "interrupted"
    assert the_run(records, recorder, "t2").data.tags["stop_reason"] == "failed"


def test_error_fails_the_run_with_its_error_and_traceback(records, tmp_path):
    client = records[0]
    recorder = recorder_for(records)
    path = tmp_path / "error.txt"
    path.write_text(TRACEBACK)
    trial = FakeTrial("t1", smoke_config(), error_file=str(path))
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_error(0, [], trial)
    run = the_run(records, recorder, "t1")
    assert run.info.status == "FAILED"
    assert run.data.tags["error"] == "trials.teanet.TrialDivergedError: loss became nan at epoch 3"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["error.txt"]
    local = client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path / "down"))
    assert Path(local).read_text() == TRACEBACK
    assert recorder.open_runs == set()


def test_error_before_start_still_gets_a_run(records):
    recorder = recorder_for(records)
    recorder.on_trial_error(0, [], FakeTrial("t9", smoke_config(), error=RuntimeError("actor died")))
    (run,) = child_runs(records[0], records[1], records[2])
    assert run.info.status == "FAILED" and run.data.tags["trial_id"] == "t9"
    assert run.data.tags["error"] == "actor died"


def test_close_open_runs_kills_only_the_open_ones(records):
    recorder = recorder_for(records)
    done, running = FakeTrial("t1", smoke_config()), FakeTrial("t2", smoke_config())
    for trial in (done, running):
        recorder.on_trial_start(0, [], trial)
    done.last_result = tune_result(4, 0.5)
    recorder.on_trial_complete(0, [], done)
    assert recorder.close_open_runs() == 1
    assert the_run(records, recorder, "t1").info.status == "FINISHED"
    killed = the_run(records, recorder, "t2")
    assert killed.info.status == "KILLED" and killed.data.tags["interrupted"] == "true"
    assert recorder.close_open_runs() == 0


def test_a_second_recorder_maps_a_trial_to_its_existing_run(records):
    first = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    first.on_trial_start(0, [], trial)
    first.on_trial_start(0, [], FakeTrial("t2", smoke_config()))
    first.close_open_runs()

    second = recorder_for(records)
    second.on_trial_start(0, [], trial)
    assert second.run_ids["t1"] == first.run_ids["t1"]
    second.on_trial_start(0, [], FakeTrial("t3", smoke_config()))
    runs = child_runs(records[0], records[1], records[2])
    assert len(runs) == 3, "no duplicate run for t1"
    assert the_run(records, second, "t3").data.tags["mlflow.runName"] == "trial-0003"
    trial.last_result = tune_result(4, 0.5)
    second.on_trial_complete(0, [], trial)
    assert the_run(records, second, "t1").info.status == "FINISHED"


def test_state_round_trip_keeps_the_mapping(records):
    first = recorder_for(records)
    trial = FakeTrial("t1", smoke_config())
    first.on_trial_start(0, [], trial)
    state = first.get_state()
    assert state == {"run_ids": {"t1": first.run_ids["t1"]}}

    restored = recorder_for(records)
    restored.set_state(state)
    assert restored.run_ids == first.run_ids
    restored.on_trial_result(0, [], trial, tune_result(1, 0.5))
    assert the_run(records, first, "t1").data.metrics["val_accuracy"] == 0.5
    assert len(child_runs(records[0], records[1], records[2])) == 1


# --- platform.resume ----------------------------------------------------------------------------
def _parent(client, experiment_id, search_id, start_time):
    tags = {"search_role": "parent", "search_id": search_id, "mlflow.runName": search_id}
    return client.create_run(experiment_id, start_time=start_time, tags=tags).info.run_id


def _child(client, experiment_id, parent_id, status):
    run_id = client.create_run(experiment_id, tags={PARENT_TAG: parent_id}).info.run_id
    if status != "RUNNING":
        client.set_terminated(run_id, status=status)
    return run_id


def test_find_search_latest_or_by_id(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    older = _parent(client, experiment_id, "s-old", 1_000)
    newer = _parent(client, experiment_id, "s-new", 2_000)
    client.create_run(experiment_id, start_time=3_000, tags={"search_id": "s-stray"})  # not a parent
    _child(client, experiment_id, newer, "FINISHED")

    latest = find_search(client, experiment_id, "latest", "teanet_masks")
    assert (latest.search_id, latest.parent_run_id) == ("s-new", newer)
    assert latest.tags["search_role"] == "parent"
    assert find_search(client, experiment_id, "s-old", "teanet_masks").parent_run_id == older
    with pytest.raises(UsageError, match="--resume: no search 's-stray' in this MLflow store"):
        find_search(client, experiment_id, "s-stray", "teanet_masks")


def test_find_search_with_nothing_to_resume(mlflow_client, tmp_path):
    client, _ = mlflow_client
    with pytest.raises(UsageError, match="no search of study 'teanet_masks'"):
        find_search(client, None, "latest", "teanet_masks")
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    client.create_run(experiment_id, tags={"search_id": "s-1"})  # not a parent run
    with pytest.raises(UsageError, match="no search of study 'teanet_masks'"):
        find_search(client, experiment_id, "latest", "teanet_masks")


def test_close_orphaned_runs_and_count_what_is_done(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    parent = _parent(client, experiment_id, "s-1", 1_000)
    other = _parent(client, experiment_id, "s-2", 2_000)
    ids = {status: _child(client, experiment_id, parent, status) for status in ("FINISHED", "FAILED")}
    orphans = [_child(client, experiment_id, parent, "RUNNING") for _ in range(2)]
    elsewhere = _child(client, experiment_id, other, "RUNNING")

    assert trials_done(client, experiment_id, parent) == 2
    assert close_orphaned_runs(client, experiment_id, parent) == 2
    for run_id in orphans:
        run = client.get_run(run_id)
        assert run.info.status == "KILLED" and run.data.tags["interrupted"] == "true"
    assert client.get_run(ids["FINISHED"]).info.status == "FINISHED"
    assert "interrupted" not in client.get_run(ids["FAILED"]).data.tags
    assert client.get_run(elsewhere).info.status == "RUNNING", "another search's runs are left alone"
    assert trials_done(client, experiment_id, parent) == 2, "killed trials run again: they do not count"
    assert close_orphaned_runs(client, experiment_id, parent) == 0


def test_fail_orphaned_trials_and_run_their_params_again(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="s-1", direction="maximize")
    finished = study.ask()
    STUDY.define_space(finished, {})
    study.tell(finished, 0.5)
    orphan = study.ask()
    STUDY.define_space(orphan, {"loss.gamma": 0.3})
    params = dict(orphan.params)

    assert fail_orphaned_trials(study) == 1
    trials = study.get_trials(deepcopy=False)
    states = optuna.trial.TrialState
    assert [t.state for t in trials] == [states.COMPLETE, states.FAIL, states.WAITING]
    assert trials[1].user_attrs == {ORPHANED: True}
    assert fail_orphaned_trials(study) == 0, "the queued rerun is waiting, not running"

    rerun = study.ask()
    STUDY.define_space(rerun, {"loss.gamma": 0.3})
    assert rerun.params == params
    assert rerun.user_attrs == {"rerun_of": orphan.number}


def test_git_tags_say_unknown_where_there_is_no_repository(tmp_path, monkeypatch):
    """A `ray up` node gets the checkout without .git: 'dirty=false' there would be a claim nobody
    checked."""
    import platform.runner

    monkeypatch.setattr(platform.runner, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path
    assert platform.runner._git() == ("unknown", "unknown")
    monkeypatch.undo()
    if (platform.runner.REPO_ROOT / ".git").exists():  # a clone: a real commit and a real answer
        commit, dirty = platform.runner._git()
        assert len(commit) == 40 and dirty in ("true", "false")
