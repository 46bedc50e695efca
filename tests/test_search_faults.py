"""Bad input, Ctrl-C and SIGKILL of a real `python -m platform.search` driver, and --resume
(DESIGN.md "Command-line conventions": exit codes; issue "Faults")."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys

import optuna
import pytest

from search_spaces import list_studies
from tests.e2e_support import (
    ROOT,
    SMOKE,
    child_statuses,
    optuna_trials,
    parent_and_children,
    search,
    start_search,
    wait_for,
)

SLOW_TRIALS = [*SMOKE, "--scheduler", "fifo", "--max-concurrent", "2", "--set", "train.epochs=60"]

BAD_INPUTS = {
    "unknown study": (["nope"], f"unknown study 'nope'; known studies: {', '.join(list_studies())}"),
    "unknown --set key": (["teanet_masks", "--set", "mask.nope=1"], "unknown config key 'mask.nope'"),
    "wrong type": (["teanet_masks", "--set", "loss.gamma=high"], "'loss.gamma': expected a number in (0, 1)"),
    "tau above 1": (["teanet_masks", "--set", "mask.tau=1.5"], "'mask.tau': expected a number in (0, 1)"),
    "tau of 0": (["teanet_masks", "--set", "mask.tau_low=0"], "'mask.tau_low': expected a number in (0, 1)"),
    "gamma of 1": (["teanet_masks", "--set", "loss.gamma=1"], "'loss.gamma': expected a number in (0, 1)"),
    "tau_low above tau_high": (["teanet_masks", "--set", "mask.tau_low=0.8"],
                               "'mask.tau_low': expected less"),
    "zero trials": (["teanet_masks", "--trials", "0"], "--trials 0: expected a positive number"),
    "negative trials": (["teanet_masks", "--trials", "-3"], "--trials -3: expected a positive number"),
    "not a budget": (["teanet_masks", "--budget", "huge"], "--budget 'huge': expected one of smoke, quick"),
    "unreachable address": (["teanet_masks", "--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray"),
    "unreachable tracking uri": (["teanet_masks", "--tracking-uri", "http://127.0.0.1:1"],
                                 "--tracking-uri http://127.0.0.1:1: no MLflow server answers"),
    "nothing to resume": (["teanet_masks", "--resume"], "--resume: no search to resume"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_error_line_exit_2_and_creates_nothing(case, tmp_path, monkeypatch, capsys):
    import platform.search

    argv, expected = BAD_INPUTS[case]
    monkeypatch.chdir(tmp_path)
    code = platform.search.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_unknown_option_is_refused_by_the_real_cli(tmp_path):
    result = subprocess.run([sys.executable, "-m", "platform.search", "teanet_masks", "--frobnicate"],
                            cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("unrecognized arguments: --frobnicate")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_more_gpus_per_trial_than_the_cluster_has(tmp_path, ray_address, monkeypatch, capsys):
    import platform.search

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAY_ADDRESS", ray_address)
    code = platform.search.main(["teanet_masks", *SMOKE, "--gpus-per-trial", "0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1] == "error: --gpus-per-trial 0.5: the cluster's largest node has 0 GPUs"
    assert not (tmp_path / "runs").exists()


def _check_resumed_search(workdir, total: int) -> None:
    """After a resume: every trial closed, killed ones KILLED/FAIL and run again, the total reached."""
    _, parent, children = parent_and_children(workdir)
    statuses = collections.Counter(c.info.status for c in children)
    assert statuses["RUNNING"] == 0 and statuses["FINISHED"] == total, statuses
    assert statuses["KILLED"] >= 1, "the interrupted trials are recorded KILLED"
    assert len({c.data.tags["trial_id"] for c in children}) == len(children), "no run duplicated"
    assert parent.info.status == "FINISHED"

    trials = optuna_trials(workdir, parent.data.tags["search_id"])
    states = collections.Counter(t.state for t in trials)
    assert states[optuna.trial.TrialState.COMPLETE] == total
    by_number = {t.number: t for t in trials}
    killed = [c for c in children if c.info.status == "KILLED"]
    for run in killed:  # its Optuna trial failed as an orphan, and its configuration ran again
        orphan = by_number[int(run.data.tags["optuna_trial_number"])]
        assert orphan.user_attrs.get("orphaned") and orphan.state == optuna.trial.TrialState.FAIL
        assert any(t.params == orphan.params and t.number > orphan.number
                   and t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # Other orphans can only be trials the searcher had asked for but Tune had not started.
    orphans = [t for t in trials if t.user_attrs.get("orphaned")]
    assert len(orphans) >= len(killed)
    assert all(t.state == optuna.trial.TrialState.FAIL for t in orphans)


@pytest.mark.slow
@pytest.mark.long
def test_sigkill_of_the_driver_then_resume(workdir, ray_address):
    driver = start_search(["teanet_masks", *SLOW_TRIALS, "--trials", "4"], workdir, ray_address)
    try:
        wait_for(lambda: "FINISHED" in child_statuses(workdir) and "RUNNING" in child_statuses(workdir),
                 240, "one trial finished while another runs")
    finally:
        driver.kill()  # SIGKILL: no handler runs, nothing is closed
        driver.wait()
    assert "RUNNING" in child_statuses(workdir)

    result = search(["teanet_masks", "--resume"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_resumed_search(workdir, total=4)


@pytest.mark.slow
def test_ctrl_c_then_resume(workdir, ray_address):
    driver = start_search(["teanet_masks", *SLOW_TRIALS, "--trials", "3"], workdir, ray_address)
    wait_for(lambda: "RUNNING" in child_statuses(workdir), 240, "a trial running")
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output
    assert "--resume" in output
    _, parent, children = parent_and_children(workdir)
    assert parent.info.status == "KILLED" and "--resume" in parent.data.tags["resume_with"]
    assert "RUNNING" not in {c.info.status for c in children}

    result = search(["teanet_masks", "--resume", parent.data.tags["search_id"]], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_resumed_search(workdir, total=3)
