"""Connecting to Ray: an existing cluster when there is one, else a local instance sized to this host.

Also what the cluster can ever give one trial: the nodes up now and, on an autoscaling cluster, the node
types its autoscaler may add. A search is refused only when neither could ever run a trial; when only
the autoscaler could, the search says so and waits for it (:func:`decide_fit`, :func:`wait_for_node`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from platform.options import UsageError

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a remote worker does not need of the repository (runtime_env working_dir ships the rest).
_NOT_SHIPPED = ["runs/", ".venv/", ".git/", "**/__pycache__/", "*.db", "benchmarks/"]
# An autoscaler node type without a node limit counts as this many nodes for the default concurrency.
_UNLIMITED_NODES = 8
# Autoscaler states: none (a local instance, or a cluster without an autoscaling config), known (its
# node types are known), unknown (it may run, but this driver cannot see its node types).
NO_AUTOSCALER, KNOWN, UNKNOWN = "none", "known", "unknown"


@dataclass(frozen=True)
class NodeType:
    """A kind of node an autoscaler may launch: its resources (CPU, GPU, memory in bytes) and how many."""

    name: str
    resources: Mapping[str, float]
    max_count: int  # -1: no limit


@dataclass(frozen=True)
class Cluster:
    address: str  # "local" for an instance this driver started
    cpus: float
    gpus: float
    max_node_cpus: float
    max_node_gpus: float
    nodes: tuple[Mapping[str, float], ...] = ()  # resources of each node alive now
    node_types: tuple[NodeType, ...] = ()  # what the autoscaler may add (when known)
    autoscaler: str = NO_AUTOSCALER
    joined: bool = False  # joined an existing cluster (else started a local instance)

    def current_nodes(self) -> tuple[Mapping[str, float], ...]:
        return self.nodes or ({"CPU": self.max_node_cpus, "GPU": self.max_node_gpus},)

    def headline(self) -> str:
        """One line: which cluster and what it holds now."""
        which = f"joined {self.address}" if self.joined else "started a local instance"
        count = len(self.current_nodes())
        return (f"Ray:            {which} ({count} node{'s' * (count != 1)}, {self.cpus:g} CPU, "
                f"{self.gpus:g} GPU)")

    def autoscaler_line(self) -> str | None:
        """What the autoscaler may add, or None without one."""
        if self.autoscaler == UNKNOWN:
            return "Autoscaler:     may add nodes (its node types are not visible from this host)"
        if self.autoscaler == KNOWN:
            kinds = ", ".join(f"{t.name} ({describe_ask(t.resources)}) × up to "
                              f"{'∞' if t.max_count < 0 else t.max_count}" for t in self.node_types)
            return f"Autoscaler:     may add {kinds}"
        return None


@dataclass(frozen=True)
class Fit:
    """Whether one trial's request can run: ``fits`` now, ``wait`` for the autoscaler, or ``refuse``."""

    verdict: str
    message: str = ""


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
        state, node_types = autoscaler_node_types(ray.get_runtime_context().gcs_address)
    else:
        ray.init(include_dashboard=False, **common)
        state, node_types = NO_AUTOSCALER, ()
    return _describe(address or "local", bool(address), state, node_types)


def _describe(address: str, joined: bool, autoscaler: str, node_types: tuple[NodeType, ...]) -> Cluster:
    import ray

    if address == "auto":
        address = ray.get_runtime_context().gcs_address
    total = ray.cluster_resources()
    nodes = tuple(dict(node["Resources"]) for node in ray.nodes() if node.get("Alive"))
    return Cluster(
        address=address,
        cpus=total.get("CPU", 0.0),
        gpus=total.get("GPU", 0.0),
        max_node_cpus=max((n.get("CPU", 0.0) for n in nodes), default=0.0),
        max_node_gpus=max((n.get("GPU", 0.0) for n in nodes), default=0.0),
        nodes=nodes, node_types=node_types, autoscaler=autoscaler, joined=joined,
    )


# --- what an autoscaler may add -------------------------------------------------------------------
def autoscaler_node_types(gcs_address: str) -> tuple[str, tuple[NodeType, ...]]:
    """(autoscaler state, its node types) of the cluster at ``gcs_address``.

    Ray 2.60 publishes the node types in the GCS only with autoscaler v2 / KubeRay
    (``ray._private.state.state.get_cluster_config()``, which Ray Train and Data read too; Tune's
    insufficient-resources check only looks for ~/ray_bootstrap_config.yaml). The classic autoscaler of
    ``ray up`` and of ``ray start --head --autoscaling-config`` keeps them in the file its monitor process
    was started with, which a driver on the head node can read."""
    import ray._private.state

    try:
        config = ray._private.state.state.get_cluster_config()
    except Exception:  # an older GCS without the key: fall through to the monitor's file
        config = None
    if config is not None and config.node_group_configs:
        return KNOWN, tuple(NodeType(g.name, {k: float(v) for k, v in g.resources.items()}, g.max_count)
                            for g in config.node_group_configs)
    monitor_args = _monitor_args(gcs_address)
    if monitor_args is None:  # the head is another host: its autoscaler, if any, is out of sight
        return UNKNOWN, ()
    config_file = next((a.split("=", 1)[1] for a in monitor_args if a.startswith("--autoscaling-config=")),
                       None)
    if config_file is None:  # a plain `ray start --head`: the monitor only watches
        return NO_AUTOSCALER, ()
    try:
        # `ray start --autoscaling-config=~/x.yaml`: bash leaves a `~` after `=` unexpanded
        return node_types_of_config(yaml.safe_load(Path(config_file).expanduser().read_text()))
    except (OSError, yaml.YAMLError, AttributeError, TypeError):
        return UNKNOWN, ()


def _monitor_args(gcs_address: str) -> list[str] | None:
    """Command line of this host's autoscaler monitor for the cluster whose GCS listens on the port of
    ``gcs_address`` (the IP may be written differently), or None when it does not run here."""
    import psutil

    port = gcs_address.rsplit(":", 1)[-1]
    for process in psutil.process_iter(["cmdline"]):
        args = process.info["cmdline"] or []
        if any(a.endswith("autoscaler/_private/monitor.py") for a in args) and any(
                a.startswith("--gcs-address=") and a.rsplit(":", 1)[-1] == port for a in args):
            return args
    return None


def node_types_of_config(config: Mapping) -> tuple[str, tuple[NodeType, ...]]:
    """Node types of a ``ray up``-style autoscaling config (the head type counts as one node)."""
    if (config.get("provider") or {}).get("type") == "readonly":
        return NO_AUTOSCALER, ()
    head = config.get("head_node_type")
    types = []
    for name, spec in (config.get("available_node_types") or {}).items():
        count = 1 if name == head else int(spec.get("max_workers", config.get("max_workers", 0)))
        resources = {k: float(v) for k, v in (spec.get("resources") or {}).items()}
        types.append(NodeType(name, resources, count))
    return KNOWN, tuple(types)


# --- does a trial fit? ----------------------------------------------------------------------------
def trial_ask(cpus: float, gpus: float, memory_gb: float = 0.0) -> dict[str, float]:
    """What one trial asks of a node, in Ray's resource names (memory in bytes)."""
    ask = {"CPU": cpus, "GPU": gpus}
    if memory_gb:
        ask["memory"] = memory_gb * 1024**3
    return ask


def _holds(resources: Mapping[str, float], ask: Mapping[str, float]) -> bool:
    """A node of these resources can run the trial (a type that does not declare memory may have it)."""
    return all(amount <= 0 or resources.get(key, 0.0 if key != "memory" else amount) >= amount
               for key, amount in ask.items())


def describe_ask(resources: Mapping[str, float]) -> str:
    """``CPU 1, GPU 0.5`` (and memory when asked): what a trial asks or a node type holds."""
    parts = [f"{key} {resources.get(key, 0.0):g}" for key in ("CPU", "GPU")]
    if resources.get("memory"):
        parts.append(f"memory {resources['memory'] / 1024**3:.3g} GB")
    return ", ".join(parts)


_FLAGS = {"CPU": ("--cpus-per-trial", "CPUs"), "GPU": ("--gpus-per-trial", "GPUs"),
          "memory": ("the trial's memory", "GB of memory")}


def decide_fit(nodes: Sequence[Mapping[str, float]], node_types: Sequence[NodeType], autoscaler: str,
               ask: Mapping[str, float]) -> Fit:
    """Can a trial asking ``ask`` ever run? On a node up now: ``fits``. Only on a node the autoscaler
    may add (or when an autoscaler runs whose node types this host cannot see): ``wait``, with the line
    to print. Else ``refuse``, naming the largest node (type)."""
    if any(_holds(node, ask) for node in nodes):
        return Fit("fits")
    want = describe_ask(ask)
    possible = [t for t in node_types if t.max_count != 0 and _holds(t.resources, ask)]
    if possible:
        return Fit("wait", f"waiting for the autoscaler to add a node with {want} "
                           f"(node type {possible[0].name}: {describe_ask(possible[0].resources)})")
    if autoscaler == UNKNOWN:
        return Fit("wait", f"no node up now has {want}; waiting for the autoscaler to add a node with "
                           f"{want} (its node types are not visible from this host)")
    candidates = [("node", dict(n)) for n in nodes] + [(f"node type {t.name}", dict(t.resources))
                                                       for t in node_types if t.max_count != 0]
    return Fit("refuse", _refusal(candidates, ask, bool(node_types)))


def _refusal(candidates: list[tuple[str, dict]], ask: Mapping[str, float], autoscaling: bool) -> str:
    """One line: the first resource no node has enough of, and the largest there is."""
    where = "node and node type" if autoscaling else "node"
    for key in ("GPU", "CPU", "memory"):
        amount = ask.get(key, 0.0)
        if amount <= 0:
            continue
        largest = max((r.get(key, 0.0) for _, r in candidates), default=0.0)
        if largest < amount:
            flag, unit = _FLAGS[key]
            scale = 1024**3 if key == "memory" else 1
            shown = f"{amount / scale:.3g} GB" if key == "memory" else f"{amount:g}"
            line = f"{flag} {shown}: the cluster's largest {where} has {largest / scale:g} {unit}"
            if autoscaling:  # name it: the user can add a bigger node type to the cluster's config
                line += " (" + next(name for name, r in candidates if r.get(key, 0.0) == largest) + ")"
            return line
    return f"no {where} of the cluster has {describe_ask(ask)} together"


def check_fits(cluster: Cluster, cpus_per_trial: float, gpus_per_trial: float,
               memory_gb: float = 0.0) -> Fit:
    """The fit of one trial on ``cluster``; raises UsageError when it can never run."""
    fit = decide_fit(cluster.current_nodes(), cluster.node_types, cluster.autoscaler,
                     trial_ask(cpus_per_trial, gpus_per_trial, memory_gb))
    if fit.verdict == "refuse":
        raise UsageError(fit.message)
    return fit


def wait_for_node(ask: Mapping[str, float], timeout_s: float | None, poll_s: float = 1.0) -> float | None:
    """Ask the autoscaler for one node that holds ``ask`` and wait until it is up; returns the seconds
    waited, or None when ``timeout_s`` passed first. The request is withdrawn either way (Tune's own
    demand keeps the node)."""
    import ray
    from ray.autoscaler.sdk import request_resources

    start = time.monotonic()
    request_resources(bundles=[{k: v for k, v in ask.items() if v > 0}])
    try:
        while timeout_s is None or time.monotonic() - start < timeout_s:
            if any(node.get("Alive") and _holds(node["Resources"], ask) for node in ray.nodes()):
                return time.monotonic() - start
            time.sleep(poll_s)
        return None
    finally:
        request_resources(bundles=[])


# --- how many trials at once ----------------------------------------------------------------------
def _slots(resources: Mapping[str, float], cpus: float, gpus: float) -> int:
    """Trials one node of these resources holds at once."""
    by_cpu = int(resources.get("CPU", 0.0) // cpus)
    return min(by_cpu, int(resources.get("GPU", 0.0) // gpus)) if gpus > 0 else by_cpu


def default_concurrency(cluster: Cluster, cpus_per_trial: float, gpus_per_trial: float) -> int:
    """As many trials as the cluster's CPUs (and GPUs, when trials use them) hold at once; on an
    autoscaling cluster, as many as it holds once grown to every node type's limit."""
    by_cpu = int(cluster.cpus // cpus_per_trial)
    by_gpu = int(cluster.gpus // gpus_per_trial) if gpus_per_trial > 0 else by_cpu
    now = min(by_cpu, by_gpu)
    grown = sum(_slots(t.resources, cpus_per_trial, gpus_per_trial)
                * (_UNLIMITED_NODES if t.max_count < 0 else t.max_count) for t in cluster.node_types)
    return max(1, now, grown)


def describe_tag(cluster: Cluster) -> str:
    """The parent run's ``ray_cluster`` tag."""
    which = f"joined {cluster.address}" if cluster.joined else "local"
    grows = f"; autoscaler: {json.dumps([t.name for t in cluster.node_types])}" if cluster.node_types else ""
    return (f"{which} ({len(cluster.current_nodes())} nodes, {cluster.cpus:g} CPU, {cluster.gpus:g} GPU"
            f"{grows})")


def refreshed(cluster: Cluster) -> Cluster:
    """The same cluster described again (after the autoscaler added a node)."""
    return _describe(cluster.address, cluster.joined, cluster.autoscaler, cluster.node_types)


def can_have_gpus(cluster: Cluster) -> bool:
    """GPUs up now, or a node type with GPUs the autoscaler may add."""
    return bool(cluster.gpus) or any(t.resources.get("GPU") and t.max_count != 0 for t in cluster.node_types)


def default_max_failures(cluster: Cluster) -> int:
    """Retries of a failed trial: 3 on a cluster of several nodes or one that autoscales (a lost node
    takes its trials with it, and another node can carry on from their checkpoints); 0 on a local
    instance or a single-node cluster, where a failure is the code's (or the whole search is lost) and
    a retry would only fail again."""
    several = len(cluster.current_nodes()) > 1 or cluster.autoscaler != NO_AUTOSCALER
    return 3 if cluster.joined and several else 0
