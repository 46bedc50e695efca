"""What a search shows and leaves behind: the progress line and results table (platform.progress) and
the end-of-search summary read back from MLflow (platform.summary). Trials are recorded through the
real TrialRecorder into a copy of the session's pre-migrated MLflow store; no Ray is started."""

from __future__ import annotations

import dataclasses
import io
import math
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from platform import progress
from platform.progress import ProgressLine, format_table, results_table
from platform.summary import (
    best_config_yaml,
    best_row,
    log_summary,
    reproduction_table,
    searched_keys,
    summary_table,
    trial_rows,
    typed_config,
)
from platform.tracking import TrialRecorder, open_experiment
from search_spaces import load_study

STUDY = load_study("teanet_masks")
SEARCH_ID = "teanet_masks-smoke-search-1"


@dataclasses.dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    last_result: dict[str, Any] = dataclasses.field(default_factory=dict)
    error_file: str | None = None
    error: Any = None

    def get_error(self):
        return self.error


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


# --- platform.progress: the live line -----------------------------------------------------------
@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress, "time", fake)
    return fake


def test_progress_line_counts_best_elapsed_and_left(clock):
    stream = io.StringIO()
    line = ProgressLine(5, "val_accuracy", "max", concurrency=2, stream=stream, min_interval_s=0,
                        name_of=lambda trial_id: f"trial-{trial_id}")
    one, two, three = FakeTrial("1"), FakeTrial("2"), FakeTrial("3")
    for trial in (one, two, three):
        line.on_trial_start(0, [], trial)
    assert "0/5 done · 3 running · 0 failed" in stream.getvalue().splitlines()[-1]
    line.on_trial_result(0, [], one, {"val_accuracy": 0.9})  # a passing value: the searcher never sees it
    one.last_result = {"val_accuracy": 0.6}
    two.last_result = {"val_accuracy": 0.8}
    clock.now += 60
    line.on_trial_complete(0, [], one)
    assert "best val_accuracy 0.6 (trial-1)" in line.line(), "the value the trial ended with"
    line.on_trial_complete(0, [], two)
    clock.now += 60
    three.last_result = {"val_accuracy": 0.95}
    line.on_trial_error(0, [], three)  # a failed trial's value is no result

    text = line.line()
    assert text == ("[search] 3/5 done · 0 running · 1 failed · best val_accuracy 0.8 (trial-2) · "
                    "2m00s elapsed · ~1m20s left")  # 2 left × mean(60, 60, 120 s) / 2 at once
    assert stream.getvalue().splitlines()[-1] == text, "it prints to the given stream"
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(set(lines)), "a line is printed only when it changes"
    assert all("left" not in printed for printed in lines[:3]), "no estimate before a trial ends"


def test_progress_line_minimises_and_counts_earlier_attempts(clock):
    line = ProgressLine(10, "val_loss", "min", concurrency=0, already_done=4, stream=io.StringIO())
    for name, value in (("a", 0.5), ("b", 0.3), ("c", 0.4)):
        trial = FakeTrial(name, last_result={"val_loss": value})
        line.on_trial_start(0, [], trial)
        line.on_trial_complete(0, [], trial)
    clock.now += 3700
    assert line.line().startswith("[search] 7/10 done · 0 running · 0 failed · best val_loss 0.3 (b) · "
                                  "1h01m elapsed")


def test_progress_line_throttles_but_always_prints_a_trial_end(clock):
    stream = io.StringIO()
    line = ProgressLine(3, "val_accuracy", "max", concurrency=1, stream=stream, min_interval_s=10)
    trial = FakeTrial("a")
    line.on_trial_start(0, [], trial)  # first line: printed
    clock.now += 1
    line.on_trial_result(0, [], trial, {"val_accuracy": 0.5})  # within 10 s: held back
    assert len(stream.getvalue().splitlines()) == 1
    line.on_trial_complete(0, [], trial)  # forced
    assert stream.getvalue().splitlines()[-1].startswith("[search] 1/3 done · 0 running · 0 failed")


def test_progress_line_heartbeat_only_when_nothing_changes(clock):
    stream = io.StringIO()
    line = ProgressLine(3, "val_accuracy", "max", concurrency=1, stream=stream, min_interval_s=10,
                        heartbeat_s=60)
    trial = FakeTrial("a")
    line.on_trial_start(0, [], trial)
    clock.now += 30
    line.on_trial_result(0, [], trial, {})  # nothing new, no heartbeat due
    assert len(stream.getvalue().splitlines()) == 1
    clock.now += 31
    line.on_trial_result(0, [], trial, {})  # the heartbeat
    assert len(stream.getvalue().splitlines()) == 2
    clock.now += 11
    trial.last_result = {"val_accuracy": 0.7}
    line.on_trial_complete(0, [], trial)  # a new best: printed at once
    assert "best val_accuracy 0.7" in stream.getvalue().splitlines()[-1]


# --- platform.progress: the table ---------------------------------------------------------------
ROWS = [
    {"trial": "trial-0001", "status": "FINISHED", "val_accuracy": 0.5, "accuracy": 0.4, "epochs": 8},
    {"trial": "trial-0002", "status": "FAILED"},
    {"trial": "trial-0003", "status": "FINISHED", "val_accuracy": 0.9, "accuracy": 0.8, "epochs": 8},
    {"trial": "trial-0004", "status": "FINISHED", "stop_reason": "scheduler", "val_accuracy": 0.7,
     "accuracy": 0.6, "epochs": 2, "loss.gamma": "0.3"},
    {"trial": "trial-0005", "status": "FINISHED", "val_accuracy": float("nan")},
]


@pytest.mark.parametrize(("mode", "order"), [("max", ["0003", "0004", "0001"]),
                                             ("min", ["0001", "0004", "0003"])])
def test_results_table_best_first_missing_last(mode, order):
    table = results_table(ROWS, "val_accuracy", mode, searched=["loss.gamma"])
    assert list(table.columns) == ["trial", "status", "stop_reason", "val_accuracy", "accuracy",
                                   "train_time_s", "peak_memory_mb", "epochs", "loss.gamma"]
    assert list(table["trial"]) == [f"trial-{n}" for n in order] + ["trial-0002", "trial-0005"]
    assert table["val_accuracy"].iloc[-2:].isna().all()


def test_format_table():
    table = results_table(ROWS, "val_accuracy", "max")
    text = format_table(table, limit=2)
    lines = text.splitlines()
    assert len(lines) == 3 and "trial-0003" in lines[1] and "trial-0004" in lines[2]
    assert "0.9" in lines[1] and "nan" not in text.lower()
    assert "nan" not in format_table(table).lower(), "missing values are blank"
    assert format_table(results_table([], "val_accuracy", "max")) == "(no trials)"


# --- platform.summary over real MLflow records --------------------------------------------------
MS4 = {"mask.scheme": "MS4", "mask.tau_low": 0.2, "mask.tau_high": 0.8, "loss.gamma": 0.4, "mask.fill": 0.0}
MS3 = {"mask.scheme": "MS3", "mask.tau": 0.25, "loss.gamma": 0.6, "mask.fill": -1.0}


@pytest.fixture
def search(mlflow_client, tmp_path):
    """A search of three trials recorded through TrialRecorder: MS4 ran all 4 epochs (0.8), MS3 was
    stopped after 2 (0.9), the third failed. Returns a namespace with client, ids and configs."""
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    parent_id = client.create_run(experiment_id, tags={"search_role": "parent", "search_id": SEARCH_ID}
                                  ).info.run_id
    numbers = {"t1": 0, "t2": 1, "t3": 2}
    searched = {"t1": MS4, "t2": MS3, "t3": MS4}
    optuna_trial = lambda trial_id: types.SimpleNamespace(  # noqa: E731
        number=numbers[trial_id], params=searched[trial_id])
    recorder = TrialRecorder(client, experiment_id, parent_id, {"search_id": SEARCH_ID}, optuna_trial)
    configs = {tid: STUDY.config_for("smoke", {"train.epochs": 4}, params)
               for tid, params in searched.items()}
    outcomes = {"t1": (4, 0.8), "t2": (2, 0.9)}
    for trial_id, config in configs.items():
        trial = FakeTrial(trial_id, config)
        recorder.on_trial_start(0, [], trial)
        if trial_id not in outcomes:
            trial.error = ValueError("boom")
            recorder.on_trial_error(0, [], trial)
            continue
        epochs, value = outcomes[trial_id]
        for epoch in range(1, epochs + 1):
            trial.last_result = {"val_accuracy": value * epoch / epochs, "accuracy": value - 0.1,
                                 "epochs": epoch, "planned_epochs": 4, "train_time_s": 2.0 * epoch}
            recorder.on_trial_result(0, [], trial, trial.last_result)
        recorder.on_trial_complete(0, [], trial)
    return types.SimpleNamespace(client=client, experiment_id=experiment_id, parent_id=parent_id,
                                 configs=configs, recorder=recorder, tmp_path=tmp_path)


def rows_of(search):
    rows = trial_rows(search.client, search.experiment_id, search.parent_id)
    return sorted(rows, key=lambda row: row["trial"])


def test_trial_rows(search):
    rows = rows_of(search)
    assert [(r["trial"], r["status"], r["stop_reason"]) for r in rows] == [
        ("trial-0001", "FINISHED", "completed"), ("trial-0002", "FINISHED", "scheduler"),
        ("trial-0003", "FAILED", "failed")]
    first = rows[0]
    assert first["val_accuracy"] == pytest.approx(0.8) and first["epochs"] == 4
    assert first["searched_keys"] == "loss.gamma,mask.fill,mask.scheme,mask.tau_high,mask.tau_low"
    assert first["param:mask.scheme"] == "MS4" and first["param:train.epochs"] == "4"
    assert rows[2]["error"] == "boom" and "val_accuracy" not in rows[2]
    assert first["grid_row"] is None and first["run_id"] == search.recorder.run_ids["t1"]


def test_trial_rows_hold_the_metrics_of_the_last_report_only(mlflow_client, tmp_path):
    """A metric an earlier epoch logged but the last report left out (boundary_error once no boundary
    is found) is not the trial's result: no number rather than a stale one."""
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "hed_architectures", str(tmp_path / "artifacts"))
    parent_id = client.create_run(experiment_id, tags={"search_role": "parent"}).info.run_id
    recorder = TrialRecorder(client, experiment_id, parent_id, {})
    trial = FakeTrial("t1", {"train.epochs": 2})
    recorder.on_trial_start(0, [], trial)
    reports = [{"epochs": 1, "planned_epochs": 2, "confidence": 0.9, "boundary_error": -3},
               {"epochs": 2, "planned_epochs": 2, "confidence": 0.0}]
    for report in reports:
        trial.last_result = report
        recorder.on_trial_result(0, [], trial, report)
    recorder.on_trial_complete(0, [], trial)
    (row,) = trial_rows(client, experiment_id, parent_id)
    assert row["confidence"] == 0.0 and row["epochs"] == 2
    assert "boundary_error" not in row


def test_searched_keys_from_tags_or_from_differences():
    tagged = [{"searched_keys": "loss.gamma,mask.scheme"}, {"searched_keys": "mask.tau,mask.scheme"},
              {"searched_keys": None}]
    assert searched_keys(tagged) == ["loss.gamma", "mask.scheme", "mask.tau"]
    grid = [{"param:mask.scheme": "MS3", "param:mask.tau": "0.1", "param:train.seed": "0", "param:x": "1"},
            {"param:mask.scheme": "MS3", "param:mask.tau": "0.5", "param:train.seed": "1", "param:x": "1"}]
    assert searched_keys(grid) == ["mask.tau"], "train.seed differs between repeats but is not searched"
    assert searched_keys([]) == []


def test_summary_table_shows_only_what_each_trial_searched(search):
    table = summary_table(rows_of(search), STUDY)
    assert list(table["trial"]) == ["trial-0002", "trial-0001", "trial-0003"]
    assert list(table["status"]) == ["FINISHED", "FINISHED", "FAILED"]
    assert list(table["stop_reason"]) == ["scheduler", "completed", "failed"]
    by_trial = table.set_index("trial")
    for key in ("loss.gamma", "mask.fill", "mask.scheme", "mask.tau", "mask.tau_high", "mask.tau_low"):
        assert key in table.columns, key
    assert by_trial.loc["trial-0002", "mask.tau"] == "0.25"
    assert by_trial.loc["trial-0002", "mask.tau_low"] == "", "MS3 has no tau_low: blank, not its default"
    assert by_trial.loc["trial-0001", "mask.tau"] == ""
    assert by_trial.loc["trial-0001", "mask.tau_low"] == "0.2"
    assert by_trial.loc["trial-0001", "mask.scheme"] == "MS4"
    assert "data.length" not in table.columns, "keys nobody searched are not shown"


def test_best_row_and_its_typed_config(search):
    rows = rows_of(search)
    best = best_row(rows, STUDY)
    assert best["trial"] == "trial-0002", "a trial stopped early still counts"
    config = typed_config(best, STUDY)
    assert config == search.configs["t2"]
    assert all(type(config[k]) is type(STUDY.fields[k].default) for k in config)
    assert best_row([r for r in rows if r["status"] == "FAILED"], STUDY) is None


def test_best_row_respects_the_mode():
    minimising = dataclasses.replace(STUDY, objective=dataclasses.replace(STUDY.objective, mode="min"))
    rows = [{"trial": "a", "status": "FINISHED", "val_accuracy": 0.3},
            {"trial": "b", "status": "KILLED", "val_accuracy": 0.1},
            {"trial": "c", "status": "FINISHED", "stop_reason": "scheduler", "val_accuracy": 0.2}]
    assert best_row(rows, minimising)["trial"] == "c", "killed trials are not candidates"
    assert best_row(rows, STUDY)["trial"] == "a"


def test_best_config_yaml_loads_back(search):
    best = best_row(rows_of(search), STUDY)
    document = yaml.safe_load(best_config_yaml(best, STUDY, SEARCH_ID))
    assert document["study"] == "teanet_masks" and document["search_id"] == SEARCH_ID
    assert document["trial"] == "trial-0002" and document["run_id"] == best["run_id"]
    assert document["val_accuracy"] == pytest.approx(0.9)
    assert document["config"] == typed_config(best, STUDY) == search.configs["t2"]


def test_best_config_yaml_is_a_valid_config_file(search, tmp_path):
    from platform.options import parse_request

    path = tmp_path / "best.yaml"
    path.write_text(best_config_yaml(best_row(rows_of(search), STUDY), STUDY, SEARCH_ID))
    request = parse_request(["teanet_masks", "--budget", "smoke", "--config", str(path)])
    assert request.fixed == search.configs["t2"]


def test_log_summary_on_the_parent_run(search):
    client = search.client
    rows = rows_of(search)
    table = summary_table(rows, STUDY)
    counts = log_summary(client, search.parent_id, rows, table, STUDY, SEARCH_ID)
    assert counts == {"trials_completed": 1, "trials_own_rule": 0, "trials_scheduler": 1,
                      "trials_time_budget": 0, "trials_interrupted": 0, "trials_failed": 1}
    parent = client.get_run(search.parent_id)
    assert {k: parent.data.metrics[k] for k in counts} == counts
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(0.9)
    assert parent.data.tags["best_trial"] == "trial-0002"
    assert {a.path for a in client.list_artifacts(search.parent_id)} == {"trials.csv", "best_config.yaml"}
    target = search.tmp_path / "downloaded"
    csv = pd.read_csv(client.download_artifacts(search.parent_id, "trials.csv", str(target)))
    assert list(csv["trial"]) == list(table["trial"])
    best = yaml.safe_load(Path(client.download_artifacts(search.parent_id, "best_config.yaml",
                                                         str(target))).read_text())
    assert best["config"] == search.configs["t2"]


def test_log_summary_when_every_trial_failed(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "artifacts"))
    parent_id = client.create_run(experiment_id).info.run_id
    rows = [{"trial": "trial-0001", "status": "FAILED", "stop_reason": "failed"}]
    counts = log_summary(client, parent_id, rows, summary_table(rows, STUDY), STUDY, SEARCH_ID)
    assert counts["trials_failed"] == 1
    parent = client.get_run(parent_id)
    assert "best_val_accuracy" not in parent.data.metrics and "best_trial" not in parent.data.tags
    assert {a.path for a in client.list_artifacts(parent_id)} == {"trials.csv"}


# --- platform.summary: the reproduction grid ----------------------------------------------------
def test_reproduction_table_beside_the_paper():
    label = "MS3 tau=0.5"
    done = {"status": "FINISHED", "grid_row": label}
    rows = [
        {"trial": "trial-0001", **done, "val_accuracy": 0.8, "accuracy": 0.7},
        {"trial": "trial-0002", **done, "val_accuracy": 0.9, "accuracy": 0.8},
        {"trial": "trial-0003", "status": "FINISHED", "grid_row": "MS1 a=0 b=0.5", "val_accuracy": 0.5,
         "accuracy": 0.25},
        {"trial": "trial-0004", "status": "FAILED", "grid_row": "MS4 tau~U(0.3;0.7)"},
    ]
    table = reproduction_table(rows, STUDY)
    assert list(table["setting"]) == [row.label for row in STUDY.reproduction]
    assert len(table) == 14
    assert list(table.columns) == ["setting", "runs", "val_accuracy %", "accuracy %",
                                   *(f"paper {c}" for c in STUDY.reference_columns)]
    by_setting = table.set_index("setting")
    std = math.sqrt(((80 - 85) ** 2 + (90 - 85) ** 2) / 1)  # sample std, in %
    assert by_setting.loc[label, "runs"] == 2
    assert by_setting.loc[label, "val_accuracy %"] == f"85.00 ± {std:.2f}"
    assert by_setting.loc[label, "accuracy %"] == f"75.00 ± {std:.2f}"
    assert by_setting.loc[label, "paper rruff_ir_mean"] == 90.07
    assert by_setting.loc[label, "paper relab_std"] == 0.95
    assert by_setting.loc["MS1 a=0 b=0.5", "val_accuracy %"] == "50.00"
    assert by_setting.loc["MS1 a=0 b=0.5", "accuracy %"] == "25.00"
    failed = by_setting.loc["MS4 tau~U(0.3;0.7)"]
    assert failed["runs"] == 0 and failed["val_accuracy %"] == "–"
    assert failed["paper usgs_mean"] == 87.37
