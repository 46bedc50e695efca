"""The driver on a cluster, without a cluster: whether a trial fits, waits for the autoscaler or is
refused (fake nodes and node types), the default concurrency and retries, ``--max-failures`` on the
command line, and how the TrialRecorder keeps a retried trial as one MLflow run."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from platform.cluster import (
    KNOWN,
    NO_AUTOSCALER,
    UNKNOWN,
    Cluster,
    NodeType,
    can_have_gpus,
    check_fits,
    decide_fit,
    default_concurrency,
    default_max_failures,
    node_types_of_config,
    trial_ask,
)
from platform.options import UsageError, build_parser, parse_request
from platform.search import main
from platform.tracking import TrialRecorder
from search_spaces import load_study

GB = 1024**3
HEAD = {"CPU": 1.0, "memory": 16 * GB}
GPU_NODE = NodeType("gpu_node", {"CPU": 2.0, "GPU": 1.0}, max_count=2)
CPU_NODE = NodeType("cpu_node", {"CPU": 8.0}, max_count=3)
SMOKE = ["teanet_masks", "--budget", "smoke"]


def autoscaling(*types: NodeType, nodes=(HEAD,), state=KNOWN) -> Cluster:
    cpus = sum(n.get("CPU", 0.0) for n in nodes)
    gpus = sum(n.get("GPU", 0.0) for n in nodes)
    return Cluster("127.0.0.1:6379", cpus, gpus, max(n.get("CPU", 0.0) for n in nodes),
                   max(n.get("GPU", 0.0) for n in nodes), nodes=tuple(nodes), node_types=types,
                   autoscaler=state, joined=True)


# --- fit, wait or refuse --------------------------------------------------------------------------
def test_a_trial_that_fits_a_node_up_now_fits():
    assert decide_fit([HEAD], [GPU_NODE], KNOWN, trial_ask(1, 0)).verdict == "fits"


def test_without_an_autoscaler_a_gpu_trial_on_cpu_nodes_is_refused():
    fit = decide_fit([HEAD, {"CPU": 4.0}], [], NO_AUTOSCALER, trial_ask(1, 0.5))
    assert fit.verdict == "refuse"
    assert fit.message == "--gpus-per-trial 0.5: the cluster's largest node has 0 GPUs"


def test_an_autoscaler_with_a_gpu_node_type_means_wait():
    fit = decide_fit([HEAD], [CPU_NODE, GPU_NODE], KNOWN, trial_ask(1, 0.5))
    assert fit.verdict == "wait"
    assert fit.message == ("waiting for the autoscaler to add a node with CPU 1, GPU 0.5 "
                           "(node type gpu_node: CPU 2, GPU 1)")


def test_a_node_type_the_autoscaler_may_not_launch_does_not_count():
    capped = dataclasses.replace(GPU_NODE, max_count=0)
    assert decide_fit([HEAD], [capped], KNOWN, trial_ask(1, 1)).verdict == "refuse"


def test_impossible_even_with_the_autoscaler_is_refused_naming_the_largest_node_type():
    fit = decide_fit([HEAD], [CPU_NODE, GPU_NODE], KNOWN, trial_ask(1, 2))
    assert fit.verdict == "refuse"
    assert fit.message == ("--gpus-per-trial 2: the cluster's largest node and node type has 1 GPUs "
                           "(node type gpu_node)")
    fit = decide_fit([HEAD], [CPU_NODE, GPU_NODE], KNOWN, trial_ask(12, 0))
    assert fit.message == ("--cpus-per-trial 12: the cluster's largest node and node type has 8 CPUs "
                           "(node type cpu_node)")


def test_resources_on_different_node_types_do_not_add_up():
    fit = decide_fit([HEAD], [CPU_NODE, GPU_NODE], KNOWN, trial_ask(4, 1))
    assert fit.verdict == "refuse"
    assert fit.message == "no node and node type of the cluster has CPU 4, GPU 1 together"


def test_memory_counts_where_a_node_declares_it():
    assert decide_fit([HEAD], [], NO_AUTOSCALER, trial_ask(1, 0, memory_gb=8)).verdict == "fits"
    fit = decide_fit([HEAD], [], NO_AUTOSCALER, trial_ask(1, 0, memory_gb=32))
    assert fit.message == "the trial's memory 32 GB: the cluster's largest node has 16 GB of memory"
    # a node type that does not declare memory may have it: wait rather than refuse
    assert decide_fit([{"CPU": 1.0, "memory": 1 * GB}], [CPU_NODE], KNOWN,
                      trial_ask(1, 0, memory_gb=32)).verdict == "wait"


def test_an_autoscaler_out_of_sight_means_wait_not_refuse():
    fit = decide_fit([HEAD], [], UNKNOWN, trial_ask(1, 1))
    assert fit.verdict == "wait"
    assert "not visible from this host" in fit.message and "GPU 1" in fit.message


def test_check_fits_raises_only_on_refusal():
    assert check_fits(autoscaling(GPU_NODE), 1, 0.5).verdict == "wait"
    with pytest.raises(UsageError, match="largest node and node type has 1 GPUs"):
        check_fits(autoscaling(GPU_NODE), 1, 4)


def test_node_types_of_an_autoscaling_config():
    config = {"head_node_type": "head", "max_workers": 5, "provider": {"type": "fake_multinode"},
              "available_node_types": {
                  "head": {"resources": {"CPU": 1}, "max_workers": 0},
                  "gpu": {"resources": {"CPU": 2, "GPU": 1}, "min_workers": 0, "max_workers": 2},
                  "cpu": {"resources": {"CPU": 4}}}}
    state, types = node_types_of_config(config)
    assert state == KNOWN
    assert types == (NodeType("head", {"CPU": 1.0}, 1), NodeType("gpu", {"CPU": 2.0, "GPU": 1.0}, 2),
                     NodeType("cpu", {"CPU": 4.0}, 5))
    assert node_types_of_config({"provider": {"type": "readonly"}}) == (NO_AUTOSCALER, ())


# --- concurrency and retries ----------------------------------------------------------------------
def test_default_concurrency_counts_what_the_cluster_can_grow_to():
    # up now: one 1-CPU head; the GPU type grows to 2 nodes × min(2 CPU / 1, 1 GPU / 0.5) = 4 trials
    assert default_concurrency(autoscaling(GPU_NODE), 1, 0.5) == 4
    assert default_concurrency(autoscaling(GPU_NODE), 1, 1) == 2
    # CPU trials: 3 cpu nodes × 8 + 2 gpu nodes × 2 (the head type is not in this fake list)
    assert default_concurrency(autoscaling(CPU_NODE, GPU_NODE), 1, 0) == 28
    assert default_concurrency(autoscaling(dataclasses.replace(CPU_NODE, max_count=-1)), 4, 0) == 16
    static = Cluster("local", 8, 0, 8, 0)
    assert default_concurrency(static, 1, 0) == 8


def test_gpus_per_trial_defaults_to_one_where_the_autoscaler_can_add_gpus():
    assert can_have_gpus(autoscaling(GPU_NODE))
    assert not can_have_gpus(autoscaling(CPU_NODE))
    assert not can_have_gpus(Cluster("local", 8, 0, 8, 0))


def test_max_failures_default_is_three_where_a_node_can_be_lost_and_zero_on_one_node():
    assert default_max_failures(autoscaling(GPU_NODE)) == 3
    two_nodes = ({"CPU": 1.0}, {"CPU": 1.0})
    assert default_max_failures(Cluster("10.0.0.1:6379", 2, 0, 1, 0, nodes=two_nodes, joined=True)) == 3
    one_node = Cluster("10.0.0.1:6379", 2, 0, 2, 0, nodes=({"CPU": 2.0},), joined=True)
    assert default_max_failures(one_node) == 0, "one node: a retry would only fail again"
    assert default_max_failures(Cluster("local", 2, 0, 2, 0)) == 0


def test_max_failures_parsing():
    assert parse_request(SMOKE).max_failures is None
    assert parse_request([*SMOKE, "--max-failures", "0"]).max_failures == 0
    assert parse_request([*SMOKE, "--max-failures", "2"]).max_failures == 2
    with pytest.raises(UsageError, match=r"^--max-failures -1: expected 0 or more$"):
        parse_request([*SMOKE, "--max-failures", "-1"])
    help_text = " ".join(build_parser().format_help().split())
    assert "default: 3 on a cluster of several nodes or an autoscaling one" in help_text
    assert "0 on a local instance or a single node, where a failure is the code's" in help_text


def test_bad_max_failures_exits_2_with_one_line_and_creates_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*SMOKE, "--max-failures", "-1"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: --max-failures -1: expected 0 or more\n"
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


# --- a retried trial in MLflow ---------------------------------------------------------------------
@dataclasses.dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] = dataclasses.field(default_factory=dict)
    error_file: str | None = None
    error: Any = None

    def get_error(self):
        return self.error


def _result(epochs: int, node: str) -> dict[str, Any]:
    return {"val_accuracy": 0.1 * epochs, "epochs": epochs, "planned_epochs": 4, "progress": epochs / 4,
            "node_id": node, "device": "cpu", "training_iteration": epochs}


def test_a_retried_trial_is_one_run_with_its_retries_and_no_epoch_twice(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = client.create_experiment("teanet_masks", artifact_location=str(tmp_path / "a"))
    parent = client.create_run(experiment_id, tags={"search_role": "parent"}).info.run_id
    recorder = TrialRecorder(client, experiment_id, parent, {"study": "teanet_masks"})
    config = load_study("teanet_masks").config_for("smoke", {"train.epochs": 4})
    trial = FakeTrial("t1", config, error=RuntimeError("The node running this trial died"))

    recorder.on_trial_start(0, [], trial)
    for epoch in (1, 2):
        recorder.on_trial_result(0, [], trial, _result(epoch, "worker"))
    recorder.on_trial_recover(0, [], trial)  # its node died: Tune restarts it from the checkpoint of epoch 1
    recorder.on_trial_start(0, [], trial)
    for epoch in (2, 3, 4):  # epoch 2 again (its checkpoint was lost with the node): logged once
        recorder.on_trial_result(0, [], trial, _result(epoch, "head"))
    trial.last_result = _result(4, "head")
    recorder.on_trial_complete(0, [], trial)

    runs = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert len(runs) == 1, "one MLflow run for the trial, whatever its restarts"
    run = runs[0]
    assert run.info.status == "FINISHED" and not recorder.open_runs
    assert run.data.tags["retries"] == "1"
    assert run.data.tags["node_id"] == "head" and run.data.tags["node_ids"] == "worker,head"
    assert "node running this trial died" in run.data.tags["last_retry_error"]
    history = client.get_metric_history(run.info.run_id, "epochs")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    accuracy = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "val_accuracy")}
    assert accuracy[2] == pytest.approx(0.2), "the first report of an epoch is the one kept"


def test_a_trial_that_never_failed_has_zero_retries(mlflow_client, tmp_path):
    client, _ = mlflow_client
    experiment_id = client.create_experiment("teanet_masks", artifact_location=str(tmp_path / "a"))
    parent = client.create_run(experiment_id, tags={"search_role": "parent"}).info.run_id
    recorder = TrialRecorder(client, experiment_id, parent, {})
    trial = FakeTrial("t2", load_study("teanet_masks").config_for("smoke", {}))
    recorder.on_trial_start(0, [], trial)
    assert client.get_run(recorder.run_ids["t2"]).data.tags["retries"] == "0"


# --- waiting for the autoscaler -------------------------------------------------------------------
def test_the_wait_is_bounded_by_the_time_budget(monkeypatch, capsys):
    import platform.search as search_cli
    from platform import cluster as ray_cluster

    request = parse_request([*SMOKE, "--gpus-per-trial", "0.5", "--time-budget", "5"])
    fit = check_fits(autoscaling(GPU_NODE), 1, 0.5)
    asked = []
    monkeypatch.setattr(ray_cluster, "wait_for_node", lambda ask, timeout: asked.append((ask, timeout)))
    assert search_cli._wait_for_autoscaler(request, fit, 0.0) is False
    assert asked == [({"CPU": 1.0, "GPU": 0.5}, 5.0)]
    out, err = capsys.readouterr()
    assert out == (f"{fit.message}, for at most 5 s (--time-budget)\n")
    assert err == ("error: the autoscaler added no node with CPU 1, GPU 0.5 within the time budget (5 s); "
                   "nothing was run\n")


def test_the_wait_counts_against_the_time_budget_and_without_one_is_unbounded(monkeypatch, capsys):
    import platform.search as search_cli
    from platform import cluster as ray_cluster

    fit = check_fits(autoscaling(GPU_NODE), 1, 0.5)
    monkeypatch.setattr(ray_cluster, "wait_for_node", lambda ask, timeout: 30.0)
    request = parse_request([*SMOKE, "--gpus-per-trial", "0.5", "--time-budget", "100"])
    assert search_cli._wait_for_autoscaler(request, fit, 0.0) is True
    assert request.time_budget_s == 70.0
    assert "A node with CPU 1, GPU 0.5 joined after 30 s." in capsys.readouterr().out
    bounds = []
    monkeypatch.setattr(ray_cluster, "wait_for_node", lambda ask, timeout: bounds.append(timeout) or 1.0)
    unbounded = parse_request([*SMOKE, "--gpus-per-trial", "0.5"])
    assert search_cli._wait_for_autoscaler(unbounded, fit, 0.0) is True
    assert bounds == [None] and unbounded.time_budget_s is None
