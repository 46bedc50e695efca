"""`python -m platform.search` end to end through a real Ray cluster (`ray start`), real Optuna RDB
and a real MLflow SQLite store, at the smoke budget (DESIGN.md "Testing")."""

from __future__ import annotations

import dataclasses
import signal

import optuna
import pytest

from tests.e2e_support import SMOKE, optuna_trials, parent_and_children, search

pytestmark = pytest.mark.slow


# --- a search, recorded ------------------------------------------------------------------------
def test_search_records_one_parent_and_nested_children(workdir, ray_address):
    args = [*SMOKE, "teanet_masks", "--trials", "3", "--set", "train.epochs=8"]
    result = search(args, workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("MLflow store:", "Optuna storage:", "Ray results:", "mlflow ui --backend-store-uri",
                 "[search] 3/3 done", "Top trials"):
        assert line in result.stdout, result.stdout

    client, parent, children = parent_and_children(workdir)
    tags = parent.data.tags
    for key in ("study", "budget", "search_id", "sampler", "scheduler", "git_commit", "git_dirty",
                "version_torch", "version_ray", "version_optuna", "version_mlflow", "host_cpu", "host_gpu",
                "dataset", "dataset_hash"):
        assert tags.get(key), key
    assert parent.info.status == "FINISHED" and "constant_liar" in tags["sampler"]
    assert tags["budget"] == "smoke" and parent.data.params["train.epochs"] == "8"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"trials.csv", "best_config.yaml"} <= artifacts

    assert len(children) == 3
    from trials.teanet_config import FIELDS

    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == set(FIELDS), "params are the complete flattened config"
        for key in ("trial_id", "optuna_trial_number", "node_id", "early_stopped", "stop_reason", "kind",
                    "device", "searched_keys"):
            assert child.data.tags.get(key), key
        epochs = int(child.data.metrics["epochs"])
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, epochs + 1)), "one point per epoch, at its step"
        stopped = child.data.tags["early_stopped"] == "true"
        assert stopped == (epochs < 8)
        assert child.data.tags["stop_reason"] == ("scheduler" if stopped else "completed")
        for metric in ("accuracy", "val_accuracy", "train_time_s", "peak_memory_mb", "trainable_params"):
            assert metric in child.data.metrics
    assert len({c.data.tags["trial_id"] for c in children}) == 3

    trials = optuna_trials(workdir, tags["search_id"])
    assert len(trials) == 3
    by_number = {str(t.number): t for t in trials}
    for child in children:
        trial = by_number[child.data.tags["optuna_trial_number"]]
        stopped = child.data.tags["early_stopped"] == "true"
        expected = optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE
        assert trial.state == expected
        for key, value in trial.params.items():
            assert child.data.params[key] == str(value)


def test_every_trial_diverging_exits_1_with_errors_recorded(workdir, ray_address):
    result = search([*SMOKE, "teanet_masks", "--trials", "2", "--set", "train.lr_unet=1e12",
                     "--set", "train.lr_classifier=1e12"], workdir, ray_address)
    assert result.returncode == 1, result.stdout + result.stderr
    client, parent, children = parent_and_children(workdir)
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FAILED", "FAILED"]
    for child in children:
        assert "TrialDivergedError" in child.data.tags["error"] and "loss became" in child.data.tags["error"]
        assert "error.txt" in {a.path for a in client.list_artifacts(child.info.run_id)}
    trials = optuna_trials(workdir, parent.data.tags["search_id"])
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2


@pytest.mark.long
def test_reproduce_runs_table4_and_prints_it_beside_the_paper(workdir, ray_address):
    result = search([*SMOKE, "teanet_masks", "--reproduce"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Beside the paper" in result.stdout
    assert "Pre-set value" not in result.stdout + result.stderr, "the grid's rows fit its param space"
    from search_spaces import load_study

    rows = load_study("teanet_masks").reproduction
    for row in rows:
        assert row.label in result.stdout
    _, parent, children = parent_and_children(workdir)
    assert parent.data.tags["kind"] == "reproduce" and parent.data.tags["sampler"] == "grid"
    assert sorted(c.data.tags["grid_row"] for c in children) == sorted(r.label for r in rows)
    assert all(c.info.status == "FINISHED" for c in children)
    for child in children:  # each trial ran its row's settings
        row = next(r for r in rows if r.label == child.data.tags["grid_row"])
        for key, value in row.config.items():
            assert child.data.params[key] == str(value)
        assert child.data.params["model.classifier_output"] == "softmax", "as the published code trained"


def test_a_failing_trial_is_recorded_and_the_search_goes_on(workdir, ray_address, monkeypatch, capsys):
    """In-process, with a study whose trial refuses MS3 (tests/flaky_trial.py) over three grid rows."""
    import platform.options
    import platform.search
    from search_spaces import load_study

    real = load_study("teanet_masks")
    kept = ("MS1 a=0 b=0.5", "MS3 tau=0.5", "MS4 tau~U(0.3;0.7)")
    rows = tuple(r for r in real.reproduction if r.label in kept)
    flaky = dataclasses.replace(real, task="tests.flaky_trial:run_trial", reproduction=rows)
    monkeypatch.setattr(platform.options, "load_study", lambda name: flaky)
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("RAY_ADDRESS", ray_address)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        code = platform.search.main(["teanet_masks", *SMOKE, "--reproduce"])
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 failed" in out
    _, parent, children = parent_and_children(workdir)
    status = {c.data.tags["grid_row"]: c.info.status for c in children}
    assert status == {"MS1 a=0 b=0.5": "FINISHED", "MS3 tau=0.5": "FAILED", "MS4 tau~U(0.3;0.7)": "FINISHED"}
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "injected failure" in failed.data.tags["error"]
    assert parent.data.metrics["trials_failed"] == 1 and parent.info.status == "FINISHED"
