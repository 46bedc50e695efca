"""Helpers of the end-to-end tests: run the real CLI against the session's Ray cluster and read
what it recorded in MLflow and Optuna."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import psutil
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ["--budget", "smoke"]


def _ray() -> str:
    ray = Path(sys.executable).with_name("ray")  # the venv's, whatever PATH says
    return str(ray) if ray.exists() else "ray"


def start_ray_cluster(num_cpus: int = 2, extra: tuple[str, ...] = (), env: dict | None = None,
                      port: int | None = None, temp: str | None = None) -> tuple[str, str]:
    """``ray start --head`` in a temp dir of its own; returns (address, temp dir)."""
    temp = temp or tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's sockets have a length limit
    port = port or _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    started = subprocess.run([_ray(), "start", "--head", f"--port={port}", f"--num-cpus={num_cpus}",
                              "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
                              "--disable-usage-stats", *extra], env=env, capture_output=True, text=True,
                             timeout=120)
    if started.returncode != 0:  # leave nothing behind, and say why
        stop_ray_cluster(temp)
        raise RuntimeError(f"ray start --head failed: {started.stderr[-2000:]}")
    return f"127.0.0.1:{port}", temp


@contextlib.contextmanager
def own_auth_token() -> Iterator[str]:
    """A token of the test's own for the clusters it starts, its searches and its node joins (all read
    RAY_AUTH_TOKEN), so it needs no ~/.ray/auth_token and writes none; the environment is restored."""
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE")}
    os.environ.update(RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_AUTH_MODE="token")
    try:
        yield os.environ["RAY_AUTH_TOKEN"]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def join_ray_node(address: str, num_cpus: int = 1) -> str:
    """A second node on this host (``ray start --address``) in a temp dir of its own; returns it.
    Joining from the same host needs token mode (DESIGN.md, Known ground)."""
    temp = tempfile.mkdtemp(prefix="rn", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    joined = subprocess.run([_ray(), "start", f"--address={address}", f"--num-cpus={num_cpus}",
                             "--num-gpus=0", f"--temp-dir={temp}", "--disable-usage-stats"], env=env,
                            capture_output=True, text=True, timeout=120)
    if joined.returncode != 0:
        stop_ray_cluster(temp)
        raise RuntimeError(f"ray start --address failed: {joined.stderr[-2000:]}")
    return temp


def fake_autoscaling_config(gcs_address: str, worker_types: dict, head_cpus: int = 1) -> dict:
    """A config for Ray's fake multi-node provider (DESIGN.md, "A cluster on one machine"): the
    provider names the head's GCS, and every key ``ray up`` would fill in is there, empty."""
    return {
        "cluster_name": "fake", "max_workers": sum(t["max_workers"] for t in worker_types.values()),
        "idle_timeout_minutes": 5, "upscaling_speed": 1.0,
        "provider": {"type": "fake_multinode", "gcs_address": gcs_address, "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True},
        "auth": {"ssh_user": "nobody"}, "docker": {}, "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0},
            **{name: {"node_config": {}, "min_workers": 0, **spec} for name, spec in worker_types.items()}},
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def start_fake_autoscaling_cluster(worker_types: dict, head_cpus: int = 1) -> tuple[str, str]:
    """A head with Ray's fake multi-node autoscaler, whose "nodes" are raylets on this host launched
    with the head's temp dir (so :func:`stop_ray_cluster` finds them); returns (address, temp dir)."""
    import yaml
    from ray._private.services import get_node_ip_address

    port = _free_port()
    temp = tempfile.mkdtemp(prefix="ra", dir="/tmp")
    config = Path(temp) / "autoscaling.yaml"  # the autoscaler reads it again on every update
    config.write_text(yaml.safe_dump(
        fake_autoscaling_config(f"{get_node_ip_address()}:{port}", worker_types, head_cpus)))
    return start_ray_cluster(head_cpus, extra=(f"--autoscaling-config={config}",), port=port, temp=temp,
                             env={"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_ray_cluster(temp: str) -> None:
    """Stop the processes of the cluster started in ``temp`` (not any other Ray on this machine)."""
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}  # a caller naming temp is not Ray's
    ours = [p for p in psutil.process_iter(["cmdline"])
            if temp in " ".join(p.info["cmdline"] or []) and p.pid not in me]
    for process in ours:
        process.terminate()
    _, alive = psutil.wait_procs(ours, timeout=5)
    for process in alive:  # after a SIGKILL'd driver some agents ignore SIGTERM (Known ground)
        process.kill()
    shutil.rmtree(temp, ignore_errors=True)


def _env(ray_address: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": ray_address,
            "RAY_USAGE_STATS_ENABLED": "0"}


def search(args: list[str], cwd: Path, ray_address: str, timeout: int = 300,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "platform.search", *args], cwd=cwd,
                          env={**_env(ray_address), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def start_search(args: list[str], cwd: Path, ray_address: str,
                 stdout: Any = subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "platform.search", *args], cwd=cwd, env=_env(ray_address),
                            stdout=stdout, stderr=subprocess.STDOUT, text=True)


def cluster_nodes(ray_address: str) -> list[dict]:
    """``ray.nodes()`` of a cluster, asked from a process of its own (the test process stays no driver)."""
    code = (f"import json, ray; ray.init(address={ray_address!r}, log_to_driver=False, "
            "logging_level='ERROR'); print(json.dumps(ray.nodes(), default=str))")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", env=_env(ray_address), capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


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


def write_xy_series(folder: Path, spectra: np.ndarray, two_theta: np.ndarray) -> None:
    """A user's series as a folder of .xy files with the Zenodo naming (the last number is the run)."""
    folder.mkdir()
    for run, intensity in enumerate(spectra, start=1):
        lines = [f"# header line {i}" for i in range(25)]
        lines += [f"{t:.6f} {y:.6f}" for t, y in zip(two_theta, intensity, strict=True)]
        (folder / f"l2_ramp_00001_m1_{run:04d}.xy").write_text("\n".join(lines) + "\n")


def experiment_runs(cwd: Path, experiment: str):
    """(client, parent run, children) of the one search of ``experiment`` in cwd's store."""
    client = client_for(cwd)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parents = [r for r in runs if r.data.tags.get("search_role") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return client, parents[0], children
