"""`python -m platform.export`: the best configs of a recorded search, as YAML that --config takes back."""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import pytest
import yaml

from platform.export import main
from platform.options import read_config_file
from platform.tracking import TrialRecorder, open_experiment
from search_spaces import load_study

STUDY = load_study("teanet_masks")


@pytest.fixture
def recorded(tmp_path, mlflow_store_template, monkeypatch):
    """runs/mlflow.db in a working directory, holding one search of three trials (val 0.5, 0.9, 0.7)."""
    from mlflow.tracking import MlflowClient

    (tmp_path / "runs").mkdir()
    shutil.copy(mlflow_store_template, tmp_path / "runs" / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    experiment_id = open_experiment(client, "teanet_masks", str(tmp_path / "runs" / "artifacts"))
    parent = client.create_run(experiment_id, tags={"search_role": "parent", "search_id": "s1",
                                                    "kind": "search"}).info.run_id
    recorder = TrialRecorder(client, experiment_id, parent, {})
    for number, gamma, value in ((1, 0.2, 0.5), (2, 0.4, 0.9), (3, 0.6, 0.7)):
        config = STUDY.config_for("smoke", {"loss.gamma": gamma})
        trial = types.SimpleNamespace(trial_id=f"t{number}", config=config,
                                      last_result={"epochs": config["train.epochs"]})
        recorder.on_trial_start(0, [], trial)
        recorder.on_trial_result(0, [], trial, {"val_accuracy": value, "epochs": config["train.epochs"]})
        recorder.on_trial_complete(0, [], trial)
    return tmp_path


def test_best_config_to_stdout_is_a_config_file_for_the_search(recorded, capsys):
    assert main(["teanet_masks"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["val_accuracy"] == 0.9 and document["search_id"] == "s1"
    assert document["config"] == STUDY.config_for("smoke", {"loss.gamma": 0.4})
    path = recorded / "best.yaml"
    path.write_text(yaml.safe_dump(document))
    assert read_config_file(path)["loss.gamma"] == 0.4


def test_top_k_to_a_directory_best_first(recorded, capsys):
    assert main(["teanet_masks", "--top", "2", "--output-dir", "best"]) == 0
    written = capsys.readouterr().out.split()
    values = [yaml.safe_load(Path(path).read_text())["val_accuracy"] for path in written]
    assert values == [0.9, 0.7]


@pytest.mark.parametrize(("argv", "expected"), [
    (["nope"], "unknown study 'nope'"),
    (["teanet_masks", "--search", "s9"], "export: no search 's9'"),
    (["teanet_masks", "--top", "0"], "--top 0: expected a positive number"),
])
def test_bad_input_is_one_error_line(recorded, capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_no_store_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["teanet_masks"]) == 2
    assert "run a search first" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
