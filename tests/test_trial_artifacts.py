"""Files a trial hands the driver (figures, labels) reach its MLflow run through Tune's checkpoint storage,
and every run is tagged with its latest checkpoint (trials/trainable.py, platform/tracking.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from trials.trainable import ARTIFACTS_DIR, STATE_FILE, save_artifacts

EPOCHS = 3


def artifact_trial(config: dict, report) -> dict:
    """A user's simple trial (no checkpoint rule) that sends two files with its last report."""
    result = {}
    for epoch in range(1, EPOCHS + 1):
        result = {"epochs": epoch, "planned_epochs": EPOCHS, "val_accuracy": epoch / EPOCHS}
        if epoch == EPOCHS:
            report(result, artifacts={"note.txt": f"x={config['x']}".encode(), "figure.png": b"\x89PNG"})
        else:
            report(result)
    return result


def test_artifact_names_must_be_plain_file_names(tmp_path):
    assert save_artifacts({"b.png": b"1", "a.json": b"2"}, tmp_path) == ["a.json", "b.png"]
    assert (tmp_path / ARTIFACTS_DIR / "b.png").read_bytes() == b"1"
    with pytest.raises(ValueError, match="plain file name"):
        save_artifacts({"../escape.txt": b""}, tmp_path)


@pytest.mark.slow
def test_a_trials_artifacts_become_artifacts_of_its_run(mlflow_client, tmp_path):
    import ray
    from ray import tune

    from platform.tracking import TrialRecorder, open_experiment  # here: the worker imports this module
    from trials.trainable import run_study_trial

    client, _ = mlflow_client
    experiment_id = open_experiment(client, "artifacts", str(tmp_path / "mlflow-artifacts"))
    parent = client.create_run(experiment_id, tags={"search_role": "parent"}, run_name="p").info.run_id
    recorder = TrialRecorder(client, experiment_id, parent, {"search_id": "s"})
    temp = Path(f"/tmp/h2ar{os.getpid()}")  # Ray's socket paths need a short temp dir
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, _temp_dir=str(temp))
    try:
        trainable = tune.with_parameters(run_study_trial, task="tests.test_trial_artifacts:artifact_trial")
        tune.Tuner(trainable, param_space={"x": tune.grid_search([1, 2])},
                   tune_config=tune.TuneConfig(max_concurrent_trials=1),
                   run_config=tune.RunConfig(name="artifacts", storage_path=str(tmp_path / "ray"), verbose=0,
                                             callbacks=[recorder])).fit()
    finally:
        ray.shutdown()  # stops the local Ray this test started, no other
        shutil.rmtree(temp, ignore_errors=True)
    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert len(runs) == 2
    for run in runs:
        files = sorted(f.path for f in client.list_artifacts(run.info.run_id))
        assert files == ["figure.png", "note.txt"], files
        x = run.data.params["x"]
        note = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / run.info.run_id))
        assert Path(note).read_text() == f"x={x}"
        checkpoint = Path(run.data.tags["checkpoint"])
        assert (checkpoint / ARTIFACTS_DIR / "note.txt").exists() and not (checkpoint / STATE_FILE).exists()
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1, 2, 3]
