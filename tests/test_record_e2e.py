"""The record says what happened, end to end through real Ray, Optuna and MLflow (issue "Trust the
record"): why each trial ended, a time budget that lets the running trial finish, and a resumed search
that trains on the files it was started on (or refuses, in one line, when they are gone or changed)."""

from __future__ import annotations

import math
import shutil

import optuna
import pytest

from tests.e2e_support import SMOKE, experiment_runs, optuna_trials, search, write_xy_series

pytestmark = pytest.mark.slow
State = optuna.trial.TrialState


def test_binned_trials_ended_by_their_own_rule_are_finished_and_complete(workdir, ray_address):
    """A stop loss no loss can miss: every trial stops itself after its first epoch's loss."""
    result = search([*SMOKE, "hed_bins", "--trials", "2", "--set", "train.epochs=6",
                     "--set", "train.stop_loss=100"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 ended by their own rule" in result.stdout
    _, parent, children = experiment_runs(workdir, "hed_bins")
    assert len(children) == 2
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["stop_reason"] == "own_rule" and child.data.tags["early_stopped"] == "false"
        assert child.data.metrics["epochs"] < 6
    assert parent.data.metrics["trials_own_rule"] == 2 and parent.data.metrics["trials_scheduler"] == 0
    trials = optuna_trials(workdir, parent.data.tags["search_id"])
    assert [t.state for t in trials] == [State.COMPLETE, State.COMPLETE], "finished, not pruned"


@pytest.mark.long
def test_a_time_budget_shorter_than_a_trial_lets_the_running_trial_finish(workdir, ray_address):
    # One trial at a time. The first starts ~5 s after the plan and trains for ~50 s here (300 epochs
    # took ~14 s on 2026-12-02): the 12 s budget ends while it runs, even on a machine 3x faster.
    result = search([*SMOKE, "teanet_masks", "--trials", "3", "--max-concurrent", "1", "--scheduler", "fifo",
                     "--time-budget", "12", "--set", "train.epochs=1200"], workdir, ray_address, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    _, parent, children = experiment_runs(workdir, "teanet_masks")
    assert len(children) == 1, "no trial starts after the budget"
    (child,) = children
    assert child.info.status == "FINISHED" and child.data.tags["stop_reason"] == "completed"
    assert child.data.metrics["epochs"] == 1200, "the running trial ran to its end"
    assert "time budget" in result.stdout
    trials = optuna_trials(workdir, parent.data.tags["search_id"])
    assert [t.state for t in trials] == [State.COMPLETE]


@pytest.mark.long
def test_a_resumed_search_reads_its_files_again_and_refuses_them_gone_or_changed(workdir, ray_address):
    from spectra.ramp import RampSettings, simulate_ramp

    ramp = simulate_ramp(RampSettings(spectra=80, points=512, transition=42, seed=3))
    folder = workdir / "series"
    write_xy_series(folder, ramp.intensity, ramp.two_theta)
    first = search([*SMOKE, "hed_architectures", "--trials", "1", "--set", f"data.path={folder}",
                    "--set", "data.transition=42", "--set", "model.name=cnn"], workdir, ray_address)
    assert first.returncode == 0, first.stdout + first.stderr

    # Resumed with one more trial: the driver reads the files again and hands them over (a trial
    # that names files but gets no data fails, it never falls back to the simulator).
    again = search(["hed_architectures", "--resume", "--trials", "2"], workdir, ray_address)
    assert again.returncode == 0, again.stdout + again.stderr
    _, parent, children = experiment_runs(workdir, "hed_architectures")
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    assert all(c.data.tags["dataset"] == f"files:{folder}" for c in children)
    assert len({c.data.tags["dataset_hash"] for c in children}) == 1
    for child in children:  # measured against the user's transition, where a boundary was found
        metrics = child.data.metrics
        error = metrics.get("boundary_error", math.nan)  # NaN: an earlier epoch's boundary was lost
        assert (not math.isnan(error)) == (metrics["confidence"] > 0)
        if metrics["confidence"] > 0:
            assert error == metrics["boundary_upper"] - 42

    shutil.move(folder, workdir / "moved")
    gone = search(["hed_architectures", "--resume", "--trials", "3"], workdir, ray_address)
    assert gone.returncode == 2
    (line,) = [line for line in gone.stderr.splitlines() if line.startswith("error:")]
    assert "--resume: the search's data cannot be read again" in line and str(folder) in line

    shutil.rmtree(workdir / "moved")
    other = ramp.intensity.copy()
    other[0] *= 1.5
    write_xy_series(folder, other, ramp.two_theta)
    refused = search(["hed_architectures", "--resume", "--trials", "3"], workdir, ray_address)
    assert refused.returncode == 2
    (line,) = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert "changed since it started" in line and parent.data.tags["dataset_hash"] in line
    _, _, children = experiment_runs(workdir, "hed_architectures")
    assert len(children) == 2, "nothing ran on other data"
