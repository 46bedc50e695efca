"""The leave-one-out ×N protocol (spectra/protocol.py) and the TeaNet trial that runs it
(trials/repeats.py): picks, left-out classes, reports per repeat, means, early stopping and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search_spaces import load_study
from spectra.errors import DataError
from spectra.labelled import LabelledSpectra
from spectra.protocol import leave_one_out, protocol_pool
from trials.teanet import run_trial

STUDY = load_study("teanet_masks")


def labelled(counts: list[int], length: int = 16) -> LabelledSpectra:
    y = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
    x = np.random.default_rng(0).random((len(y), length)).astype(np.float32)
    names = tuple(f"m{i}" for i in range(len(counts)))
    return LabelledSpectra(x, y, names, np.arange(length, dtype=np.float64), "test.csv")


def test_classes_with_one_spectrum_are_left_out_and_named():
    pool = protocol_pool(labelled([3, 1, 4, 1]))
    assert pool.left_out == ("m1", "m3") and pool.class_names == ("m0", "m2")
    assert pool.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert "2 classes remain; 2 with a single spectrum left out of the protocol: m1, m3" in pool.describe()


def test_fewer_than_two_classes_left_is_refused():
    with pytest.raises(DataError, match="test.csv: 1 class"):
        protocol_pool(labelled([5, 1, 1]))


@pytest.mark.parametrize("val_split", ["random", "stratified"])
def test_each_repeat_tests_one_spectrum_per_class_and_uses_all_the_rest(val_split):
    pool = protocol_pool(labelled([2, 5, 3, 9]))
    picks = []
    for repeat in range(6):
        splits = leave_one_out(pool, repeat, seed=0, val_split=val_split)
        assert sorted(splits.y_test.tolist()) == [0, 1, 2, 3]
        rows = [tuple(r) for r in (*splits.x_train, *splits.x_val, *splits.x_test)]
        assert len(rows) == len(set(rows)) == len(pool.y), "disjoint, and together every spectrum"
        if val_split == "stratified":
            assert set(splits.y_train.tolist()) == {0, 1, 2, 3}, "every class keeps a training spectrum"
        picks.append(splits.x_test.tobytes())
    assert len(set(picks)) > 1, "repeats pick other test spectra"
    again = leave_one_out(pool, 3, seed=0, val_split=val_split)
    assert np.array_equal(again.x_test, leave_one_out(pool, 3, seed=0, val_split=val_split).x_test)


# --- the trial: one report per repeat -------------------------------------------------------------

def smoke(**changes) -> dict:
    return STUDY.config_for("smoke", {"train.epochs": 1, "eval.protocol": "leave_one_out",
                                      "eval.repeats": 3, **changes})


def run(config, data=None, resume_from=None, report_state=False):
    reports = []

    def report(metrics, state=None, artifacts=None):
        reports.append((dict(metrics), state, artifacts))

    result = run_trial(config, report, data=data, resume_from=resume_from, report_state=report_state)
    return reports, result


@pytest.fixture(scope="module")
def three_repeats():
    torch.set_num_threads(1)
    return run(smoke(), report_state=True)


def test_reports_each_repeat_at_its_step_with_running_means(three_repeats):
    reports, result = three_repeats
    assert [m["epochs"] for m, _, _ in reports] == [1, 2, 3]
    assert all(m["planned_epochs"] == 3 for m, _, _ in reports)
    accuracies = [m["repeat_accuracy"] for m, _, _ in reports]
    vals = [m["repeat_val_accuracy"] for m, _, _ in reports]
    last = reports[-1][0]
    assert last["accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert last["accuracy_std"] == pytest.approx(np.std(accuracies))
    assert last["val_accuracy_mean"] == pytest.approx(np.mean(vals)) == last["val_accuracy"]
    assert last["val_accuracy_std"] == pytest.approx(np.std(vals))
    assert reports[0][0]["val_accuracy_mean"] == vals[0]
    assert result == last and last["classes"] == 4 and last["classes_left_out"] == 0


def test_only_the_last_report_carries_the_artifacts(three_repeats):
    reports, _ = three_repeats
    assert [a is not None for _, _, a in reports] == [False, False, True]
    artifacts = reports[-1][2]
    assert artifacts["reconstructions.png"].startswith(b"\x89PNG")
    lines = artifacts["test_predictions.csv"].decode().splitlines()
    assert lines[0] == "repeat,true,predicted" and len(lines) == 1 + 3 * 4  # 4 classes, 3 repeats
    assert {line.split(",")[0] for line in lines[1:]} == {"0", "1", "2"}


def test_a_resumed_trial_continues_at_the_next_repeat(three_repeats):
    reports, result = three_repeats
    state = reports[0][1]
    assert state["epochs"] == 1 and "unet" in state["trainer"] and "classifier" in state["trainer"]
    resumed, resumed_result = run(smoke(), resume_from=state, report_state=True)
    assert [m["epochs"] for m, _, _ in resumed] == [2, 3]
    for key in ("repeat_accuracy", "accuracy_mean", "val_accuracy_mean", "accuracy_std"):
        assert resumed_result[key] == result[key]


def test_without_early_stopping_it_reports_once():
    reports, _ = run(smoke(**{"eval.early_stopping": "none", "eval.repeats": 2}))
    assert [m["epochs"] for m, _, _ in reports] == [2]


def test_the_trial_trains_on_the_spectra_it_is_handed():
    data = labelled([3, 1, 4, 3], length=64)
    reports, result = run(smoke(**{"data.format": "csv", "data.path": "test.csv", "eval.repeats": 1}), data)
    assert result["classes"] == 3 and result["classes_left_out"] == 1
    names = {line.split(",")[1] for line in reports[-1][2]["test_predictions.csv"].decode().splitlines()[1:]}
    assert names == {"m0", "m2", "m3"}


# --- end to end: a user's file through the driver, Ray and MLflow -----------------------------------

@pytest.mark.slow
def test_a_users_csv_reaches_the_trials_and_the_record(workdir, ray_address):
    from mlflow.tracking import MlflowClient

    from tests.e2e_support import SMOKE, experiment_runs, search

    rng = np.random.default_rng(0)
    rows = [f"mineral{c}," + ",".join(f"{v:.4f}" for v in rng.random(40) + c)
            for c in range(4) for _ in range(4)]
    path = workdir / "spectra.csv"
    path.write_text("\n".join(["label," + ",".join(str(400 + 10 * i) for i in range(40)), *rows,
                               "lonely," + ",".join(["1"] * 40)]) + "\n")
    result = search([*SMOKE, "teanet_gamma", "--trials", "1", "--set", "data.format=csv",
                     "--set", f"data.path={path}", "--set", "data.length=32"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "17 spectra of 32 points, 5 classes" in result.stdout
    assert "4 classes remain; 1 with a single spectrum left out of the protocol: lonely" in result.stdout
    _, parent, (child,) = experiment_runs(workdir, "teanet_gamma")
    assert child.info.status == "FINISHED" and child.data.tags["dataset"] == f"csv:{path}"
    assert child.data.metrics["classes"] == 4 and child.data.metrics["classes_left_out"] == 1
    client = MlflowClient(f"sqlite:///{workdir / 'runs' / 'mlflow.db'}")
    assert {a.path for a in client.list_artifacts(child.info.run_id)} >= {"reconstructions.png",
                                                                           "test_predictions.csv"}
    history = client.get_metric_history(child.info.run_id, "repeat_accuracy")
    assert sorted(m.step for m in history) == [1, 2], "each repeat's accuracy at its step"
    assert "best_trial_confusion.png" in {a.path for a in client.list_artifacts(parent.info.run_id)}
