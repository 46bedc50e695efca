"""Trials checkpoint every epoch and resume from a checkpoint (trials.contract, trials/trainable.py).

Each task's smoke trial runs all its epochs, its state saved after each one as the trainable saves it;
a second run resumed from the state after epoch k reports epochs k+1.. only, and reports what the
uninterrupted run reported, exactly: the same process and thread count run the same float operations
in the same order, so nothing but the machine's measures (time, memory) may differ. Variants that drop
one part of the state (a generator, torch's random state) show the comparison would catch a part left
out. The last test goes through real Tune: a trial that fails once at epoch 2 resumes from there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from search_spaces import load_study
from trials import baselines, hed, teanet
from trials.contract import StateMismatchError, epoch_progress
from trials.trainable import TASKS, checkpoints, load_state, run_task, save_state, trial_function

MEASURED = {"train_time_s", "peak_memory_mb", "samples_per_s",
            "confidence_score"}  # confidence_score = confidence − 1e-6 · train_time_s
EPOCHS, K = 5, 2

# Smoke configs that carry as much as possible across epochs: mini-batches shuffled by the trial's
# generator, dropout drawing from torch's random state, an LR schedule that steps every epoch (TeaNet),
# and an evaluation every 2 epochs (HED: epoch 3 reports the evaluation made at epoch 2).
CASES = {
    "hed": (hed.run_trial, load_study("hed_architectures").config_for(
        "smoke", {"model.name": "cnn", "model.cnn.dropout": 0.3, "train.batch_size": 16,
                  "train.epochs": EPOCHS, "eval.every": 2})),
    "teanet": (teanet.run_trial, load_study("teanet_masks").config_for(
        "smoke", {"train.epochs": EPOCHS, "train.lr_step": 1, "model.classifier_dropout": 0.5})),
    # Its TeaNet method on the split (the repeats of the protocol reseed each repeat and are tested in
    # tests/test_teanet_baselines.py).
    "teanet_baselines": (baselines.run_trial, load_study("teanet_baselines").config_for(
        "smoke", {"method": "teanet", "eval.protocol": "split", "data.samples_min": 0, "train.epochs": EPOCHS,
                  "train.lr_step": 1, "model.classifier_dropout": 0.5})),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def run(function, config: Mapping[str, Any], saved: Path | None = None,
        resume_from: Mapping[str, Any] | None = None) -> tuple[list[dict], dict]:
    """Run a trial as the trainable does; with ``saved``, each epoch's state goes to saved/epoch<N>.
    Returns a copy of every report and the returned metrics."""
    reports: list[dict] = []

    def report(metrics: dict, state: Mapping[str, Any] | None = None, artifacts: Any = None) -> None:
        reports.append(dict(metrics))
        assert state is not None and state["epochs"] == metrics["epochs"]
        if saved is not None:
            directory = saved / f"epoch{metrics['epochs']}"
            directory.mkdir(parents=True)
            save_state(state, directory)

    result = run_task(function, config, report, resume_from=resume_from)
    return reports, result


def without_measured(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metrics.items() if key not in MEASURED}


@pytest.fixture(scope="module", params=sorted(CASES))
def uninterrupted(request, tmp_path_factory):
    """(task, the uninterrupted run's reports and result, the directory of its saved states)."""
    function, config = CASES[request.param]
    saved = tmp_path_factory.mktemp(f"{request.param}-states")
    reports, result = run(function, config, saved)
    return request.param, reports, result, saved


def test_a_resumed_trial_reports_the_remaining_epochs_as_the_uninterrupted_run_did(uninterrupted):
    task, full, full_result, saved = uninterrupted
    function, config = CASES[task]
    assert [r["epochs"] for r in full] == list(range(1, EPOCHS + 1))

    state = load_state(saved / f"epoch{K}")
    resumed, result = run(function, config, resume_from=state)

    assert [r["epochs"] for r in resumed] == list(range(K + 1, EPOCHS + 1)), "no epoch twice, none missed"
    for before, after in zip(full[K:], resumed, strict=True):
        assert without_measured(after) == without_measured(before), f"{task}, epoch {after['epochs']}"
    assert without_measured(result) == without_measured(full_result)
    # Training time goes on from the saved figure, not from zero.
    saved_time = full[K - 1]["train_time_s"]
    assert state["train_seconds"] <= saved_time < resumed[0]["train_time_s"]
    assert [r["train_time_s"] for r in resumed] == sorted(r["train_time_s"] for r in resumed)
    # The peak memory figure is the trial's over both attempts.
    assert all(r["peak_memory_mb"] >= full[K - 1]["peak_memory_mb"] for r in resumed)


@pytest.mark.parametrize("part", ["generator", "random"])
def test_resuming_without_a_random_state_would_show(uninterrupted, part):
    """Proof that the comparison above sees the parts of the state: restore the batch-order generator
    (or torch's random state, which dropout draws from) as it was at the start, not after epoch K, and
    the resumed run differs from the uninterrupted one."""
    task, full, _, saved = uninterrupted
    function, config = CASES[task]
    state = load_state(saved / f"epoch{K}")
    fresh = torch.Generator().manual_seed(config["train.seed"] + 1).get_state()
    if part == "generator":
        state["generator"] = fresh
    else:
        state["random"] = {"torch": fresh}
    resumed, _ = run(function, config, resume_from=state)
    assert [without_measured(r) for r in resumed] != [without_measured(r) for r in full[K:]]


def test_a_state_loads_back_as_plain_data_only(uninterrupted, tmp_path):
    """The checkpoint file holds tensors and plain containers: torch.load(weights_only=True) reads it
    (the trainable's load_state), and it is what was saved."""
    task, full, _, saved = uninterrupted
    state = load_state(saved / f"epoch{EPOCHS}")
    assert state["epochs"] == EPOCHS and state["metrics"] == full[-1]
    assert torch.load(saved / f"epoch{EPOCHS}" / "trial_state.pt", weights_only=True)["epochs"] == EPOCHS


def test_a_state_after_the_last_epoch_resumes_to_its_result_without_training(uninterrupted):
    task, full, full_result, saved = uninterrupted
    function, config = CASES[task]
    resumed, result = run(function, config, resume_from=load_state(saved / f"epoch{EPOCHS}"))
    assert resumed == [] and result == full_result


def test_a_state_of_another_config_is_refused_before_training(uninterrupted):
    task, _, _, saved = uninterrupted
    function, config = CASES[task]
    other = {**config, "train.seed": config["train.seed"] + 1}
    with pytest.raises(StateMismatchError, match="another config"):
        run(function, other, resume_from=load_state(saved / f"epoch{K}"))


def test_a_trial_stopped_by_its_own_rule_stays_stopped_when_resumed(tmp_path):
    """The binned FCNN's stop rule (B5.8) is state too: resumed before the stop, the trial stops at
    the same epoch; resumed from the stopping epoch's state, it trains no more."""
    config = load_study("hed_bins").config_for("smoke", {"train.epochs": 5, "train.stop_loss": 0.69})
    full, result = run(hed.run_trial, config, tmp_path)
    assert [r["epochs"] for r in full] == [1, 2, 3] and result["stop_reason"] == "own_rule"
    resumed, after_two = run(hed.run_trial, config, resume_from=load_state(tmp_path / "epoch2"))
    assert [without_measured(r) for r in resumed] == [without_measured(full[-1])]
    assert run(hed.run_trial, config, resume_from=load_state(tmp_path / "epoch3")) == ([], result)


def test_every_task_keeps_the_checkpoint_rule_and_is_tested_here():
    assert set(CASES) == set(TASKS), "add the new task's smoke config to CASES"
    assert all(checkpoints(trial_function(task)) for task in TASKS)


def plain_trial(config: dict, report) -> dict:
    """A user's trial function without the checkpoint rule."""
    metrics = {**epoch_progress(1, 1), "value": config["x"]}
    report(metrics)
    return metrics


def test_a_trial_function_without_the_checkpoint_rule_runs_without_states():
    reports: list[dict] = []
    result = run_task(plain_trial, {"x": 3, "_row": "driver's note"}, lambda m, state=None: reports.append(m))
    assert reports == [result] and result["value"] == 3
    with pytest.raises(ValueError, match="takes no resume_from"):
        run_task(plain_trial, {"x": 3}, reports.append, resume_from={"epochs": 1})


# --- through real Tune ---------------------------------------------------------------------------

FAIL_AT = 2


def flaky_hed_trial(config: dict, report, resume_from=None, report_state=False) -> dict:
    """The HED trial, failing once right after its epoch-2 report (its checkpoint saved): the first
    attempt only, which leaves the marker file named by the config's ``flaky.marker``."""
    marker = Path(config.pop("flaky.marker"))

    def failing_report(metrics: dict, state=None) -> None:
        report(metrics, state=state)
        if metrics["epochs"] == FAIL_AT and not marker.exists():
            marker.write_text(str(os.getpid()))
            raise RuntimeError(f"injected failure after epoch {FAIL_AT}")

    return hed.run_trial(config, failing_report, resume_from=resume_from, report_state=report_state)


@pytest.mark.slow
def test_tune_retries_a_failed_trial_from_its_latest_checkpoint(tmp_path):
    """Two trials of one config, one at a time on a reused worker: the first fails once after epoch 2
    and is retried from its epoch-2 checkpoint; the second starts afresh on the same worker (nothing of
    the first's state leaks into it). Both report epochs 1-5 once, with the uninterrupted run's numbers."""
    import ray
    from ray import tune

    from trials.trainable import run_study_trial

    _, config = CASES["hed"]
    uninterrupted, _ = run(hed.run_trial, config)
    marker = tmp_path / "failed-once"
    temp = Path(f"/tmp/h2ck{os.getpid()}")  # Ray's socket paths need a short temp dir
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, _temp_dir=str(temp),
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        trainable = tune.with_parameters(run_study_trial, task="tests.test_trial_checkpoint:flaky_hed_trial")
        tuner = tune.Tuner(
            trainable, param_space={**config, "flaky.marker": str(marker)},
            tune_config=tune.TuneConfig(num_samples=2, max_concurrent_trials=1, reuse_actors=True),
            run_config=tune.RunConfig(name="checkpoint", storage_path=str(tmp_path / "ray"), verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=1),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
        results = tuner.fit()
    finally:
        ray.shutdown()  # stops the local Ray this test started, no other
        shutil.rmtree(temp, ignore_errors=True)
    assert marker.exists(), "no attempt failed: nothing was tested"
    assert len(results) == 2 and not results.errors, results.errors
    for result in results:
        history = result.metrics_dataframe
        # The failed trial: epochs 1-2 from its first attempt, 3-5 from the retry; none twice, none missing.
        assert list(history["epochs"]) == list(range(1, EPOCHS + 1))
        assert list(history["device"]) == ["cpu"] * EPOCHS and history["node_id"].notna().all()
        times = list(history["train_time_s"])
        assert times == sorted(times), "train_time_s continues from the saved figure"
        # Another process, one thread as here: the very numbers of the in-process uninterrupted run.
        for key in ("train_loss", "train_accuracy", "confidence"):
            assert list(history[key]) == [r[key] for r in uninterrupted], key
        assert result.checkpoint is not None and load_state(result.checkpoint.path)["epochs"] == EPOCHS
