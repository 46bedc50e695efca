"""A search on an autoscaling cluster whose only GPU node type starts with no node: the driver says it
waits for the autoscaler, which adds GPU nodes (Ray's fake multi-node provider: raylets on this host),
and the trials run there, two to a GPU. Every process stays on this machine and is stopped by the
cluster's own temp dir (the fake provider launches the worker raylets itself)."""

from __future__ import annotations

import itertools

import pytest

from tests.e2e_support import (
    cluster_nodes,
    own_auth_token,
    parent_and_children,
    search,
    start_fake_autoscaling_cluster,
    stop_ray_cluster,
)

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

GPU_NODE = {"resources": {"CPU": 2, "GPU": 1}, "max_workers": 2}


@pytest.fixture
def autoscaling_cluster():
    with own_auth_token():
        address, temp = start_fake_autoscaling_cluster({"gpu_node": GPU_NODE}, head_cpus=1)
        try:
            yield address
        finally:
            stop_ray_cluster(temp)


def _overlap(a, b) -> bool:
    return a.info.start_time < b.info.end_time and b.info.start_time < a.info.end_time


def test_the_autoscaler_adds_gpu_nodes_and_two_trials_share_a_gpu(autoscaling_cluster, workdir):
    address = autoscaling_cluster
    result = search(["teanet_masks", "--budget", "smoke", "--trials", "4", "--scheduler", "fifo",
                     "--gpus-per-trial", "0.5", "--cpus-per-trial", "1"], workdir, address, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    said = [f"Ray:            joined {address} (1 node, 1 CPU, 0 GPU)",
            "gpu_node (CPU 2, GPU 1) × up to 2",  # on the "Autoscaler:" line
            "waiting for the autoscaler to add a node with CPU 1, GPU 0.5 (node type gpu_node: CPU 2, GPU 1)",
            "Search id:"]
    positions = [out.find(line) for line in said]
    assert -1 not in positions and positions == sorted(positions), out

    nodes = cluster_nodes(address)
    head = [n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"]]
    gpu_nodes = {n["NodeID"] for n in nodes if n["Resources"].get("GPU") == 1.0}
    assert len(head) == 1 and gpu_nodes, nodes

    _, parent, children = parent_and_children(workdir)
    assert parent.data.tags["max_failures"] == "3", "joined a cluster: trials are retried"
    assert parent.data.tags["ray_cluster"].startswith(f"joined {address}")
    assert parent.data.tags["resources_per_trial"] == "cpu=1 gpu=0.5"
    assert len(children) == 4 and {c.info.status for c in children} == {"FINISHED"}
    assert {c.data.tags["device"] for c in children} == {"cpu"}, "torch sees no CUDA on a fake GPU node"
    ran_on = {c.data.tags["node_id"] for c in children}
    assert ran_on <= gpu_nodes and head[0] not in ran_on, (ran_on, gpu_nodes)
    shared = [(a, b) for a, b in itertools.combinations(children, 2)
              if a.data.tags["node_id"] == b.data.tags["node_id"] and _overlap(a, b)]
    assert shared, "two trials ran on one GPU node at the same time (0.5 GPU each)"
