"""Results without Ray: the experiment's kind, dataset inputs, re-run and objective options, export's
filters and Pareto set, predict's refusals, the report's table and plots (from recorded runs)."""

from __future__ import annotations

import shutil
import types

import optuna
import pytest
import yaml

from platform import export, predict, report
from platform.options import UsageError, parse_objectives, parse_request
from platform.tracking import TrialRecorder, open_experiment, runs_page
from search_spaces import load_study

TEANET = load_study("teanet_masks")
SMOKE = ["teanet_masks", "--budget", "smoke"]


@pytest.fixture
def recorded(tmp_path, mlflow_store_template, monkeypatch):
    """runs/mlflow.db holding a multi-objective search of four MS1/MS3 trials and a re-run after it."""
    from mlflow.tracking import MlflowClient

    (tmp_path / "runs").mkdir()
    shutil.copy(mlflow_store_template, tmp_path / "runs" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "runs" / "art"), "a study")
    trials = [("MS1", 0.2, 0.5, 10.0), ("MS3", 0.3, 0.9, 30.0), ("MS3", 0.5, 0.7, 5.0),
              ("MS1", 0.4, 0.6, 40.0)]
    for kind in ("search", "rerun"):
        tags = {"search_role": "parent", "search_id": kind, "kind": kind}
        if kind == "search":
            tags["objectives"] = "val_accuracy:max,train_time_s:min"
        parent = client.create_run(experiment_id, tags=tags).info.run_id
        recorder = TrialRecorder(client, experiment_id, parent, {"dataset": "lorentz", "dataset_hash": "abc"})
        for number, (scheme, tau, value, seconds) in enumerate(trials[:4 if kind == "search" else 1]):
            config = TEANET.config_for("smoke", {"mask.scheme": scheme, "mask.tau": tau})
            trial = types.SimpleNamespace(trial_id=f"{kind}{number}", config=config,
                                          last_result={"epochs": config["train.epochs"]})
            recorder.on_trial_start(0, [], trial)
            recorder.on_trial_result(0, [], trial, {"val_accuracy": value, "train_time_s": seconds,
                                                    "epochs": config["train.epochs"]})
            recorder.on_trial_complete(0, [], trial)
    return client, experiment_id


def test_the_experiment_is_a_training_experiment_and_runs_name_their_data(recorded):
    client, experiment_id = recorded
    experiment = client.get_experiment(experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == "a study"
    run = client.search_runs([experiment_id], filter_string="tags.trial_id = 'search0'")[0]
    (dataset,) = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("lorentz", "abc")
    assert runs_page("sqlite:///x.db", "7") == "http://127.0.0.1:5000/#/experiments/7/runs"
    assert runs_page("http://head:5000", "7") == "http://head:5000/#/experiments/7/runs"


def test_export_where_metric_and_pareto_set(recorded, capsys):
    assert export.main(["teanet_masks"]) == 0  # the multi-objective search: its Pareto set
    front = {d["trial"] for d in yaml.safe_load_all(capsys.readouterr().out)}
    assert front == {"trial-0002", "trial-0003"}, "0.9 in 30 s and 0.7 in 5 s; the others are dominated"
    assert export.main(["teanet_masks", "--where", "mask.scheme=MS1", "--metric", "val_accuracy"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["trial"] == "trial-0004" and document["config"]["mask.scheme"] == "MS1"
    assert export.main(["teanet_masks", "--metric", "train_time_s"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["metrics"]["train_time_s"] == 5.0  # a time: min
    assert export.main(["teanet_masks", "--kind", "rerun"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["search_id"] == "rerun"


@pytest.mark.parametrize(("argv", "expected"), [
    (["teanet_masks", "--where", "model.nope=1"], "--where model.nope=1: expected KEY=VALUE with a config"),
    (["teanet_masks", "--where", "loss.gamma=big"], "config key 'loss.gamma': expected a number"),
    (["teanet_masks", "--metric", "nope"], "--metric nope: no trial of this search recorded it"),
    (["teanet_masks", "--kind", "reproduce"], "export: no search of study 'teanet_masks'"),
    (["hed_bins"], "export: no search of study 'hed_bins'"),
])
def test_export_bad_input(recorded, capsys, argv, expected):
    assert export.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_a_search_without_runs_is_bad_input(tmp_path, mlflow_store_template, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    (tmp_path / "runs").mkdir()
    shutil.copy(mlflow_store_template, tmp_path / "runs" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment_id = open_experiment(client, "teanet_masks", None)
    client.create_run(experiment_id, tags={"search_role": "parent", "search_id": "s0", "kind": "search"})
    assert export.main(["teanet_masks"]) == 2
    assert "export: search s0 has no runs" in capsys.readouterr().err


def _write(path, documents):
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def test_rerun_options(tmp_path):
    good = {"config": TEANET.config_for("smoke", {"loss.gamma": 0.3}), "study": "teanet_masks",
            "run_id": "r1"}
    request = parse_request([*SMOKE, "--config", _write(tmp_path / "a.yaml", [good, good]), "--repeats", "3"])
    assert request.repeats == 3 and len(request.reruns) == 2
    assert request.reruns[0].config["loss.gamma"] == 0.3 and request.reruns[0].source["run_id"] == "r1"


@pytest.mark.parametrize(("document", "extra", "expected"), [
    ({"config": {"loss.gamma": 0.3}}, ["--repeats", "0"], "--repeats 0: expected a positive number"),
    ({"config": {"nope.key": 1}}, ["--repeats", "2"], "unknown config key 'nope.key'"),
    ({"config": {"loss.gamma": "high"}}, ["--repeats", "2"], "config key 'loss.gamma': expected a number"),
    ({"config": {"loss.gamma": 0.3}, "study": "hed_bins"}, ["--repeats", "2"], "exported from study 'hed_"),
    ({"config": {"loss.gamma": 0.3}}, ["--repeats", "2", "--resume"], "cannot be combined with --repeats"),
])
def test_rerun_bad_input(tmp_path, document, extra, expected):
    with pytest.raises(UsageError, match=expected.replace("(", r"\(")):
        parse_request([*SMOKE, "--config", _write(tmp_path / "c.yaml", [document]), *extra])


def test_objectives_name_recorded_metrics():
    assert parse_objectives("val_accuracy:max,train_time_s:min", TEANET) == [("val_accuracy", "max"),
                                                                            ("train_time_s", "min")]
    for text, expected in (("val_accuracy:max,nope:min", "does not record 'nope'"),
                           ("val_accuracy:up,train_time_s:min", "expected METRIC:max or METRIC:min"),
                           ("val_accuracy:max", "two or more different metrics")):
        with pytest.raises(UsageError, match=expected):
            parse_objectives(text, TEANET)
    with pytest.raises(UsageError, match="not to --reproduce"):
        parse_request([*SMOKE, "--reproduce", "--objectives", "val_accuracy:max,train_time_s:min"])


def test_predict_refuses_unknown_runs_and_runs_without_a_model(recorded, capsys):
    client, experiment_id = recorded
    run_id = client.search_runs([experiment_id])[0].info.run_id
    assert predict.main(["0123456789abcdef", "--data", "x.npy"]) == 2
    assert "no run '0123456789abcdef'" in capsys.readouterr().err
    assert predict.main([run_id, "--data", "x.npy"]) == 2
    assert f"run {run_id} keeps no model" in capsys.readouterr().err


def test_report_writes_the_table_and_the_plots_that_apply(recorded, capsys, tmp_path):
    assert report.main(["teanet_masks", "--output-dir", "rep"]) == 0
    written = {path.name for path in (tmp_path / "rep").iterdir()}
    # No Optuna study in this store: the history comes from MLflow, no importance or coordinates.
    assert written == {"report_table.csv", "optimization_history.png", "accuracy_vs_tau.png",
                       "pareto_front.png"}
    out = capsys.readouterr().out
    assert "paper rruff_ir_mean" in out and "Wrote rep/report_table.csv" in out


def test_pareto_set():
    rows = [{"a": 1.0, "t": 5.0}, {"a": 0.5, "t": 1.0}, {"a": 0.4, "t": 2.0}, {"a": 1.0, "t": 6.0}]
    front = report.pareto_set(rows, [("a", "max"), ("t", "min")])
    assert front == rows[:2]


def _keep_as_best(client, experiment_id, study, config, metrics, checkpoint, data=None) -> str:
    """A finished trial's run under a parent, its best model saved from ``checkpoint``; its run id."""
    from platform.best_model import save_best_model
    from platform.summary import trial_rows

    tags = {"search_role": "parent", "search_id": "m", "kind": "search"}
    parent = client.create_run(experiment_id, tags=tags)
    run = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent.info.run_id,
                                                 "checkpoint": str(checkpoint)})
    for key, value in config.items():
        client.log_param(run.info.run_id, key, str(value))
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    (best,) = trial_rows(client, experiment_id, parent.info.run_id)
    assert "model/weights.pt" in save_best_model(client, study, best, data)
    return run.info.run_id


@pytest.mark.slow  # a real TeaNet trial (seconds) and ray.tune.Checkpoint
def test_a_teanet_best_model_kept_from_its_checkpoint_classifies_as_the_trial_did(recorded, tmp_path, capsys):
    """A trial's state in a checkpoint folder (as Tune keeps it) → save_best_model → predict on the test
    split as a .npy: the classes give the trial's own test accuracy. The checkpoint is the last epoch's,
    as Tune keeps it; the state carries the classifier the trial kept by validation loss, whose figures
    the trial reported, and that is the one saved."""
    import numpy as np

    from trials.teanet import cached_lorentz, run_trial
    from trials.teanet_config import lorentz_settings
    from trials.trainable import save_state

    client, experiment_id = recorded
    config = TEANET.config_for("smoke", {"train.epochs": 3})

    def report(metrics, state, artifacts=None):  # a checkpoint per epoch, written as Tune's is
        folder = tmp_path / f"checkpoint-{metrics['epochs']}"
        folder.mkdir()
        save_state(state, folder)

    metrics = run_trial(config, report, report_state=True)
    checkpoint = tmp_path / f"checkpoint-{config['train.epochs']}"  # the last, whatever epoch was kept
    run_id = _keep_as_best(client, experiment_id, TEANET, config, metrics, checkpoint)

    splits = cached_lorentz(lorentz_settings(config))
    np.save(tmp_path / "test.npy", splits.x_test)
    assert predict.main([run_id, "--data", str(tmp_path / "test.npy"), "--output", "p.csv"]) == 0
    assert f"weights after epoch {int(metrics['selected_epoch'])}" in capsys.readouterr().out
    import pandas as pd

    classes = pd.read_csv(tmp_path / "p.csv")["class"].to_numpy()
    assert np.mean(classes == splits.y_test) == pytest.approx(metrics["accuracy"])
    np.save(tmp_path / "short.npy", splits.x_test[:, :32])
    assert predict.main([run_id, "--data", str(tmp_path / "short.npy")]) == 2
    assert "spectra of 32 points, but the model was trained on 64 points" in capsys.readouterr().err


@pytest.mark.slow  # a real HED trial of two pairs (seconds)
def test_a_hed_model_of_three_anchor_ranges_and_a_2theta_range_predicts_each_transition(recorded, tmp_path,
                                                                                         capsys):
    """issue 10 × issue 11: a model trained on a 2θ range with K = 3 anchor ranges keeps one classifier
    per pair; predict on its series (folder, and .7z as shipped) crops as the trial did and labels each
    pair's segment exactly as the trial's last evaluation did, with the same boundaries."""
    import json

    import numpy as np
    import pandas as pd
    import py7zr

    from spectra.ramp import simulate_ramp
    from tests.e2e_support import write_xy_series
    from trials.hed import run_trial
    from trials.hed_config import ramp_settings
    from trials.trainable import save_state

    client, experiment_id = recorded
    hed = load_study("hed_architectures")
    config = hed.config_for("smoke", {
        "data.spectra": 150, "data.points": 1024, "data.sim_transition": 50, "data.sim_transition2": 100,
        "data.pool_step": 5, "data.copies": 5, "train.epochs": 4, "model.name": "fcnn_1d",
        "data.anchors": "0:36:5,65:86:5,115:150:5", "data.two_theta": "10:24"})
    files = {}

    def report(metrics, state=None, artifacts=None):  # a checkpoint per epoch, as Tune keeps it
        files.update(artifacts or {})
        folder = tmp_path / f"checkpoint-{metrics['epochs']}"
        folder.mkdir()
        save_state(state, folder)

    metrics = run_trial(config, report, report_state=True)
    checkpoint = tmp_path / f"checkpoint-{config['train.epochs']}"
    run_id = _keep_as_best(client, experiment_id, hed, config, metrics, checkpoint)

    ramp = simulate_ramp(ramp_settings(config))
    write_xy_series(tmp_path / "ramp", ramp.intensity, ramp.two_theta)
    with py7zr.SevenZipFile(tmp_path / "ramp.7z", "w") as archive:
        archive.writeall(tmp_path / "ramp", "ramp")
    pairs = json.loads(files["labels.json"])["pairs"]
    for data in ("ramp", "ramp.7z"):
        assert predict.main([run_id, "--data", str(tmp_path / data), "--output", "p.csv"]) == 0, data
        out = capsys.readouterr().out
        table = pd.read_csv("p.csv")
        for k, pair in enumerate(pairs, start=1):
            labels = table[f"label_{k}"].iloc[pair["start"]:pair["stop"]].to_numpy()
            np.testing.assert_array_equal(labels, pair["labels"])
            assert table[f"label_{k}"].drop(range(pair["start"], pair["stop"])).isna().all()
            assert (f"transition {k} (spectra {pair['start']}..{pair['stop'] - 1}): boundary: class 0 up to "
                    f"spectrum {int(metrics[f'boundary_{k}_lower'])}, class 1 from spectrum "
                    f"{int(metrics[f'boundary_{k}_upper'])}") in out
    write_xy_series(tmp_path / "early", ramp.intensity[:120], ramp.two_theta)  # ends before range 3
    assert predict.main([run_id, "--data", str(tmp_path / "early")]) == 2
    assert "reaches spectrum 145, but the series has 120 spectra" in capsys.readouterr().err


def _labelled_csv(path, wavenumbers, per_class=5, classes=4, seed=0):
    """Spectra as a user's CSV: a header of wavenumbers, then 'mineralC,values…' (a bump per class)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for c in range(classes):
        centre = 400 + (c + 1) * 390 / (classes + 1)  # a class's peak, at the same place on any axis
        for _ in range(per_class):
            values = 10 * np.exp(-(((wavenumbers - centre) / 20) ** 2)) + rng.random(len(wavenumbers))
            rows.append(f"mineral{c}," + ",".join(f"{v:.5f}" for v in values))
    path.write_text("\n".join(["label," + ",".join(f"{w:g}" for w in wavenumbers), *rows]) + "\n")
    return path


@pytest.mark.slow  # a real TeaNet trial (seconds)
def test_a_teanet_model_of_a_users_files_reads_their_format_onto_its_own_axis(recorded, tmp_path, capsys):
    """Trained on a user's CSV resampled to 32 points, the model takes new files in that format: predict
    resamples them onto the model's wavenumbers and scales them as training did (its classes are the
    network's on the data the trial saw), names the classes, compares with the files' labels, and
    refuses files that do not cover the model's range."""
    import numpy as np
    import pandas as pd
    import torch

    from models.registry import create_model
    from platform.best_model import load_saved_model
    from spectra.formats import load_spectra
    from trials.teanet import run_trial
    from trials.teanet_config import classifier_options
    from trials.trainable import save_state

    client, experiment_id = recorded
    gamma = load_study("teanet_gamma")
    path = _labelled_csv(tmp_path / "spectra.csv", np.linspace(400, 790, 40))
    config = gamma.config_for("smoke", {"data.format": "csv", "data.path": str(path), "data.length": 32,
                                        "train.epochs": 2, "eval.repeats": 1})
    data = load_spectra("csv", path, 32)

    def report(metrics, state, artifacts=None):  # a checkpoint per report, as Tune keeps them
        folder = tmp_path / f"checkpoint-{len(list(tmp_path.glob('checkpoint-*')))}"
        folder.mkdir()
        save_state(state, folder)

    metrics = run_trial(config, report, data=data, report_state=True)
    checkpoint = sorted(tmp_path.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[-1]
    run_id = _keep_as_best(client, experiment_id, gamma, config, metrics, checkpoint, data)

    assert predict.main([run_id, "--data", str(path), "--output", "p.csv"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "p.csv")
    saved = load_saved_model(client, run_id)
    network = create_model(config["model.classifier"], **classifier_options(saved.config))
    network.load_state_dict(saved.weights["classifier"])
    network.eval()
    with torch.no_grad():
        expected = network(torch.from_numpy(data.x)).argmax(dim=1).numpy()
    assert list(table["class"]) == [data.class_names[k] for k in expected]
    assert list(table["given"]) == [data.class_names[k] for k in data.y]
    assert f"agree with the files' labels: {int((expected == data.y).sum())} of 20" in out

    narrow = _labelled_csv(tmp_path / "narrow.csv", np.linspace(450, 700, 30))
    assert predict.main([run_id, "--data", str(narrow)]) == 2
    assert "do not cover the model's 400–790" in capsys.readouterr().err


def test_a_plot_that_fails_on_these_trials_costs_only_itself():
    """fANOVA refuses trials whose objective never varies (two smoke trials at 0.25): the importance plot
    is said not drawn, the other plots still come."""
    study = optuna.create_study(direction="maximize")
    for gamma in (0.2, 0.7):
        study.enqueue_trial({"loss.gamma": gamma})
        study.optimize(lambda trial: trial.suggest_float("loss.gamma", 0.05, 0.95) * 0 + 0.25, n_trials=1)
    drawn = report.draw([], TEANET, study)
    assert set(drawn.figures) == {"optimization_history.png", "parallel_coordinates.png"}
    assert "zero total variance" in drawn.skipped["param_importances.png"]
