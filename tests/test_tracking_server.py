"""A search recorded through a real MLflow tracking server (``mlflow server``, SQLite backend, served
artifacts) instead of a local store: the same record as tests/test_search_e2e.py, read back through the
server, and nothing of MLflow's left in the working directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.e2e_support import SMOKE, optuna_trials, search, start_ray_cluster, stop_ray_cluster

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

_START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def ray_cluster_address():
    address, temp = start_ray_cluster()
    yield address
    stop_ray_cluster(temp)


@pytest.fixture(scope="module")
def tracking_server(mlflow_store_template):
    """(URI, artifacts folder) of an ``mlflow server`` in a process group of its own, stopped at the end."""
    home = Path(tempfile.mkdtemp(prefix="mlsrv", dir="/tmp"))
    shutil.copy(mlflow_store_template, home / "m.db")  # pre-migrated: the server starts in seconds
    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{home / 'm.db'}",
               "--artifacts-destination", str(home / "artifacts"), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "2"]
    log = open(home / "server.log", "w")  # noqa: SIM115  (closed below, after the server)
    server = subprocess.Popen(command, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not _healthy(uri):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start:\n{(home / 'server.log').read_text()}")
            time.sleep(0.5)
        yield uri, home / "artifacts"
    finally:
        _stop_group(server)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (its workers too), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
    with contextlib.suppress(ProcessLookupError):  # workers the server started may outlive it
        os.killpg(process.pid, signal.SIGKILL)


def test_a_search_recorded_through_a_tracking_server(tmp_path, ray_cluster_address, tracking_server):
    uri, artifacts = tracking_server
    args = [*SMOKE, "teanet_masks", "--trials", "3", "--set", "train.epochs=8", "--tracking-uri", uri]
    result = search(args, tmp_path, ray_cluster_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"MLflow store:   {uri}" in result.stdout and f"open {uri} in a browser" in result.stdout

    # The record went to the server: nothing of MLflow's in the working directory.
    for local in ("mlflow.db", "mlruns", "mlartifacts", "runs/mlflow.db", "runs/mlflow-artifacts"):
        assert not (tmp_path / local).exists(), local
    assert (tmp_path / "runs" / "optuna.db").exists(), "the Optuna study still defaults to runs/"

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("teanet_masks")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("search_role") == "parent"]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(runs) - 1 == 3, "every other run is nested under the parent"

    tags = parent.data.tags
    for key in ("study", "budget", "search_id", "sampler", "scheduler", "git_commit", "version_mlflow",
                "dataset"):
        assert tags.get(key), key
    assert parent.info.status == "FINISHED" and parent.data.params["train.epochs"] == "8"
    assert {"trials.csv", "best_config.yaml"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    best = yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, "best_config.yaml",
                                                         str(tmp_path / "download"))).read_text())
    assert best["search_id"] == tags["search_id"] and best["run_id"] in {c.info.run_id for c in children}
    assert list(artifacts.rglob("best_config.yaml")), "the artifact is kept by the server"

    from trials.teanet_config import FIELDS

    for child in children:
        assert child.info.status == "FINISHED"
        assert set(child.data.params) == set(FIELDS)
        for key in ("trial_id", "optuna_trial_number", "node_id", "early_stopped", "stop_reason", "device"):
            assert child.data.tags.get(key), key
        epochs = int(child.data.metrics["epochs"])
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in history] == list(range(1, epochs + 1))
        stopped = child.data.tags["early_stopped"] == "true"
        assert stopped == (epochs < 8)
        assert child.data.tags["stop_reason"] == ("scheduler" if stopped else "completed")
        for metric in ("accuracy", "val_accuracy", "train_time_s", "peak_memory_mb", "trainable_params"):
            assert metric in child.data.metrics

    trials = optuna_trials(tmp_path, tags["search_id"])
    assert len(trials) == 3
    by_number = {str(t.number): t for t in trials}
    for child in children:
        trial = by_number[child.data.tags["optuna_trial_number"]]
        stopped = child.data.tags["early_stopped"] == "true"
        expected = optuna.trial.TrialState.PRUNED if stopped else optuna.trial.TrialState.COMPLETE
        assert trial.state == expected
        for key, value in trial.params.items():
            assert child.data.params[key] == str(value)
