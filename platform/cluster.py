"""Connecting to Ray: an existing cluster when there is one, else a local instance sized to this host."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platform.options import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a remote worker does not need of the repository (runtime_env working_dir ships the rest).
_NOT_SHIPPED = ["runs/", ".venv/", ".git/", "**/__pycache__/", "*.db", "benchmarks/"]


@dataclass(frozen=True)
class Cluster:
    address: str  # "local" for an instance this driver started
    cpus: float
    gpus: float
    max_node_cpus: float
    max_node_gpus: float


def _running_cluster_on_this_node() -> bool:
    """``ray start`` / ``ray up`` leave this file behind while a cluster runs on this node."""
    temp = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
    return temp.exists()


def use_token_auth_when_available() -> None:
    """Ray's token authentication (on by default since 2.5x) lets a driver join a cluster started by
    ``ray start``/``ray up`` only in token mode, with the token ``ray start`` keeps in ~/.ray/auth_token.
    Ray reads this when it is first imported, so call this before ``import ray``."""
    token = Path.home() / ".ray" / "auth_token"
    if "RAY_AUTH_MODE" not in os.environ and (token.exists() or os.environ.get("RAY_AUTH_TOKEN")):
        os.environ["RAY_AUTH_MODE"] = "token"


def connect(address: str | None) -> Cluster:
    """Join ``address`` (or RAY_ADDRESS, or this node's running cluster) shipping our code with
    ``runtime_env`` (workers on other hosts cannot see this checkout); else start a local instance,
    whose workers find the code on the driver's path."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address is None and _running_cluster_on_this_node():
        address = "auto"
    common = {"log_to_driver": False, "configure_logging": True, "logging_level": "WARNING"}
    if address:
        runtime_env = {"working_dir": str(REPO_ROOT), "excludes": _NOT_SHIPPED}
        try:
            ray.init(address=address, runtime_env=runtime_env, **common)
        except ConnectionError as error:
            raise UsageError(f"--address {address}: cannot join the Ray cluster ({error})") from None
    else:
        ray.init(include_dashboard=False, **common)
    return _describe(address or "local")


def _describe(address: str) -> Cluster:
    import ray

    total = ray.cluster_resources()
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    return Cluster(
        address=address,
        cpus=total.get("CPU", 0.0),
        gpus=total.get("GPU", 0.0),
        max_node_cpus=max((n.get("CPU", 0.0) for n in nodes), default=0.0),
        max_node_gpus=max((n.get("GPU", 0.0) for n in nodes), default=0.0),
    )


def check_fits(cluster: Cluster, cpus_per_trial: float, gpus_per_trial: float) -> None:
    """A trial runs on one node: its request must fit the largest node."""
    if gpus_per_trial > cluster.max_node_gpus:
        raise UsageError(f"--gpus-per-trial {gpus_per_trial:g}: the cluster's largest node has "
                         f"{cluster.max_node_gpus:g} GPUs")
    if cpus_per_trial > cluster.max_node_cpus:
        raise UsageError(f"--cpus-per-trial {cpus_per_trial:g}: the cluster's largest node has "
                         f"{cluster.max_node_cpus:g} CPUs")


def default_concurrency(cluster: Cluster, cpus_per_trial: float, gpus_per_trial: float) -> int:
    """As many trials as the cluster's CPUs (and GPUs, when trials use them) hold at once."""
    by_cpu = int(cluster.cpus // cpus_per_trial)
    by_gpu = int(cluster.gpus // gpus_per_trial) if gpus_per_trial > 0 else by_cpu
    return max(1, min(by_cpu, by_gpu))
