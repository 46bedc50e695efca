"""A user's path after a search, end to end at the smoke budget (issue "Results people can use"):
search → export → re-run the exported YAML with seeds → predict with the best model → report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e_support import client_for, search, write_xy_series

pytestmark = pytest.mark.slow

# The binned FCNN learns the smoke ramp's transition in 60 epochs (confidence 0.54 here), so the saved
# model has a boundary to find again; two trials so that the importance plot has something to relate.
PLOTS = {"SPECTRA_REPORT_PLOTS": "1"}  # this test checks them (conftest.py turns them off elsewhere)
SEARCH = ["hed_bins", "--budget", "smoke", "--trials", "2", "--scheduler", "fifo", "--max-concurrent", "1",
          "--set", "model.binned_fcnn.bins=4", "--set", "train.epochs=60", "--set", "train.lr=0.005"]


def _runs(client, experiment_id, kind):
    runs = client.search_runs([experiment_id])
    parents = [r for r in runs if r.data.tags.get("search_role") == "parent" and r.data.tags["kind"] == kind]
    assert len(parents) == 1
    parent = parents[0]
    return parent, [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


@pytest.mark.long
def test_search_export_rerun_predict_report(workdir, ray_address, monkeypatch, capsys):
    from platform import export, predict, report

    result = search(SEARCH, workdir, ray_address, env=PLOTS)
    assert result.returncode == 0, result.stdout + result.stderr
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("hed_bins")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"].startswith("How many bins")
    assert f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs" in result.stdout
    parent, children = _runs(client, experiment.experiment_id, "search")
    for run in (parent, *children):  # the runs table's Dataset column
        assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["simulated_ramp"]
        assert run.inputs.dataset_inputs[0].dataset.digest == parent.data.tags["dataset_hash"]
    report_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report_table.csv", "report/optimization_history.png", "report/pareto_front.png",
            "report/confidence_vs_bins.png"} <= report_artifacts

    # Export: metrics and provenance with the config.
    monkeypatch.chdir(workdir)
    assert export.main(["hed_bins", "--output-dir", "best"]) == 0
    (exported,) = (workdir / "best").glob("*.yaml")
    document = yaml.safe_load(exported.read_text())
    best_run = client.get_run(document["run_id"])
    assert document["git_commit"] == best_run.data.tags["git_commit"] and document["date"].startswith("20")
    assert document["metrics"]["confidence"] == best_run.data.metrics["confidence"]
    assert "Exported the best 1 of 2 trials by confidence_score" in capsys.readouterr().err

    # Re-run the exported YAML twice: the first repeat has exactly its params, the second another seed.
    result = search(["hed_bins", "--budget", "smoke", "--config", str(exported), "--repeats", "2",
                     "--max-concurrent", "1"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    rerun, repeats = _runs(client, experiment.experiment_id, "rerun")
    assert rerun.data.tags["rerun_of_run_id"] == document["run_id"] and len(repeats) == 2
    exported_params = {key: str(value) for key, value in document["config"].items()}
    by_row = {run.data.tags["grid_row"]: run.data.params for run in repeats}
    assert by_row["repeat 1"] == exported_params
    assert int(by_row["repeat 2"]["train.seed"]) == document["config"]["train.seed"] + 1
    assert {k: v for k, v in by_row["repeat 2"].items() if k != "train.seed"} == {
        k: v for k, v in exported_params.items() if k != "train.seed"}
    values = [run.data.metrics["confidence"] for run in repeats]
    assert rerun.data.metrics["confidence_mean"] == pytest.approx(sum(values) / 2)
    assert rerun.data.metrics["confidence_std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert export.main(["hed_bins"]) == 0, "export still reads the search, not the re-run"
    assert yaml.safe_load(capsys.readouterr().out)["search_id"] == parent.data.tags["search_id"]

    # Predict with the search's best model on the same series, as files: the trial's own verdict.
    from search_spaces import load_study
    from spectra.ramp import simulate_ramp
    from trials.hed_config import ramp_settings

    ramp = simulate_ramp(ramp_settings(load_study("hed_bins").config_for("smoke", document["config"])))
    write_xy_series(workdir / "ramp", ramp.intensity, ramp.two_theta)
    model_run = parent.data.tags.get("best_model_run") or client.get_run(parent.info.run_id).data.tags[
        "best_model_run"]
    assert predict.main([model_run, "--data", "ramp"]) == 0
    out = capsys.readouterr().out
    metrics = client.get_run(model_run).data.metrics
    assert (f"boundary: class 0 up to spectrum {int(metrics['boundary_lower'])}, class 1 from spectrum "
            f"{int(metrics['boundary_upper'])}") in out
    assert f"confidence: {metrics['confidence']:.4f}" in out
    assert predict.main([model_run, "--data", str(workdir / "ramp" / "none")]) == 2
    short = workdir / "short"
    write_xy_series(short, ramp.intensity[:, :256], ramp.two_theta[:256])
    assert predict.main([model_run, "--data", "short"]) == 2
    assert "spectra of 256 points, but the model was trained on 512 points" in capsys.readouterr().err

    # The report: the table and every plot that applies.
    assert report.main(["hed_bins", "--output-dir", "rep"]) == 0
    written = {path.name for path in Path(workdir / "rep").iterdir()}
    out = capsys.readouterr().out
    # fANOVA needs objectives that vary: two smoke trials sometimes tie (0.5375 both, seen in CI), and
    # then the report says the importance plot was not drawn and why, instead of drawing it.
    importance = {"param_importances.png"} if "param_importances.png: not drawn (" not in out else set()
    assert written == {"report_table.csv", "optimization_history.png", "parallel_coordinates.png",
                       "confidence_vs_bins.png", "pareto_front.png"} | importance
    assert "paper confidence" in out


@pytest.mark.long
def test_a_multi_objective_search_tells_optuna_both_and_exports_its_pareto_set(workdir, ray_address,
                                                                                monkeypatch):
    """NSGA-II through a real Tune run: every trial's two values reach Optuna, and export writes exactly
    the trials no other trial dominates."""
    import optuna

    from platform import export

    objectives = "val_accuracy:max,train_time_s:min"
    result = search(["teanet_masks", "--budget", "smoke", "--trials", "4", "--max-concurrent", "2",
                     "--objectives", objectives], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    client = client_for(workdir)
    experiment = client.get_experiment_by_name("teanet_masks")
    parent, children = _runs(client, experiment.experiment_id, "search")
    assert parent.data.tags["objectives"] == objectives and len(children) == 4
    assert all(run.info.status == "FINISHED" for run in children)

    storage = f"sqlite:///{workdir / 'runs' / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_accuracy", "train_time_s"]
    done = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(done) == 4 and all(len(trial.values) == 2 for trial in done)

    monkeypatch.chdir(workdir)
    assert export.main(["teanet_masks", "--output-dir", "front"]) == 0
    exported = {yaml.safe_load(path.read_text())["run_id"] for path in (workdir / "front").glob("*.yaml")}
    points = {run.info.run_id: (run.data.metrics["val_accuracy"], run.data.metrics["train_time_s"])
              for run in children}

    def dominated(run_id):
        accuracy, seconds = points[run_id]
        return any(a >= accuracy and s <= seconds and (a, s) != (accuracy, seconds)
                   for other, (a, s) in points.items() if other != run_id)

    assert exported == {run_id for run_id in points if not dominated(run_id)}
