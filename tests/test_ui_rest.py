"""What the MLflow UI shows of a search, read through the REST API the UI itself calls, from a real
``mlflow server``: the experiment and its kind, the parent run with its nested children, metric
histories, datasets and artifacts (issue "Results people can use", part 1)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from tests.e2e_support import SMOKE, search
from tests.test_tracking_server import tracking_server  # noqa: F401  (the fixture: a real mlflow server)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]  # starts an mlflow server (~1 min here)


def _get(uri: str, endpoint: str, **query: str) -> dict:
    with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}",
                                timeout=30) as response:
        return json.load(response)


def _post(uri: str, endpoint: str, body: dict) -> dict:
    request = urllib.request.Request(f"{uri}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _tags(entity: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in entity.get("tags", [])}


def test_what_the_ui_shows_of_a_search(tmp_path, ray_address, tracking_server):  # noqa: F811
    uri, _ = tracking_server
    result = search([*SMOKE, "teanet_masks", "--trials", "2", "--scheduler", "fifo", "--tracking-uri", uri],
                    tmp_path, ray_address, env={"SPECTRA_REPORT_PLOTS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr

    experiment = _get(uri, "experiments/get-by-name", experiment_name="teanet_masks")["experiment"]
    tags = _tags(experiment)
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.note.content"].startswith("Which random-masking scheme")
    experiment_id = experiment["experiment_id"]
    assert f"Runs page:      {uri}/#/experiments/{experiment_id}/runs" in result.stdout

    runs = _post(uri, "runs/search", {"experiment_ids": [experiment_id], "max_results": 100})["runs"]
    parents = [run for run in runs if _tags(run["data"]).get("search_role") == "parent"]
    assert len(parents) == 1
    parent_id = parents[0]["info"]["run_id"]
    children = [run for run in runs if _tags(run["data"]).get("mlflow.parentRunId") == parent_id]
    assert len(children) == 2 == len(runs) - 1, "the parent expands to its nested trials"

    for run in (parents[0], *children):  # the runs table's Dataset column
        (dataset,) = run["inputs"]["dataset_inputs"]
        assert dataset["dataset"]["name"] == "lorentz" and dataset["dataset"]["digest"]
    for child in children:
        run_id = child["info"]["run_id"]
        history = _get(uri, "metrics/get-history", run_id=run_id, metric_key="val_loss")["metrics"]
        assert [point["step"] for point in history] == list(range(1, len(history) + 1)) and history

    artifacts = {f["path"] for f in _get(uri, "artifacts/list", run_id=parent_id)["files"]}
    assert {"trials.csv", "best_config.yaml", "report"} <= artifacts
    report = {f["path"] for f in _get(uri, "artifacts/list", run_id=parent_id, path="report")["files"]}
    assert {"report/report_table.csv", "report/optimization_history.png", "report/pareto_front.png",
            "report/accuracy_vs_tau.png"} <= report
    best = _tags(parents[0]["data"])["best_model_run"]
    model = {f["path"] for f in _get(uri, "artifacts/list", run_id=best, path="model")["files"]}
    assert model == {"model/weights.pt", "model/model.yaml"}
