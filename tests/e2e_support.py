"""Helpers of the end-to-end tests: run the real CLI against the session's Ray cluster and read
what it recorded in MLflow and Optuna."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psutil
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--budget", "smoke"]


def start_ray_cluster() -> tuple[str, str]:
    """``ray start --head`` in a temp dir of its own; returns (address, temp dir)."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = Path(sys.executable).with_name("ray")  # the venv's, whatever PATH says
    subprocess.run([str(ray) if ray.exists() else "ray", "start", "--head", f"--port={port}", "--num-cpus=2",
                    "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
                    "--disable-usage-stats"], env=env, check=True, capture_output=True, timeout=120)
    return f"127.0.0.1:{port}", temp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_ray_cluster(temp: str) -> None:
    """Stop the processes of the cluster started in ``temp`` (not any other Ray on this machine)."""
    ours = [p for p in psutil.process_iter(["cmdline"]) if temp in " ".join(p.info["cmdline"] or [])]
    for process in ours:
        process.terminate()
    _, alive = psutil.wait_procs(ours, timeout=5)
    for process in alive:  # after a SIGKILL'd driver some agents ignore SIGTERM (Known ground)
        process.kill()
    shutil.rmtree(temp, ignore_errors=True)


def _env(ray_address: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ray_address,
            "RAY_USAGE_STATS_ENABLED": "0"}


def search(args: list[str], cwd: Path, ray_address: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform.search", *args], cwd=cwd, env=_env(ray_address),
                          capture_output=True, text=True, timeout=timeout)


def start_search(args: list[str], cwd: Path, ray_address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "platform.search", *args], cwd=cwd, env=_env(ray_address),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def client_for(cwd: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{cwd / 'runs' / 'mlflow.db'}")


def parent_and_children(cwd: Path):
    client = client_for(cwd)
    experiment = client.get_experiment_by_name("teanet_masks")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("search_role") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1, "every run other than the parent is nested under it"
    return client, parents[0], children


def optuna_trials(cwd: Path, search_id: str) -> list:
    study = optuna.load_study(study_name=search_id, storage=f"sqlite:///{cwd / 'runs' / 'optuna.db'}")
    return study.get_trials(deepcopy=False)


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def child_statuses(cwd: Path) -> list[str]:
    client = client_for(cwd)
    experiment = client.get_experiment_by_name("teanet_masks")
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id])
    return [r.info.status for r in runs if "mlflow.parentRunId" in r.data.tags]


