"""cluster.yaml, checked offline the way ``ray up`` checks it before touching AWS (Ray's JSON schema,
``prepare_config``, ``validate_config``), then for what this project needs of a cluster; and the same
checks catching malformed copies, so a broken file is found before anyone runs ``ray up``."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"


def _load_validator():
    spec = importlib.util.spec_from_file_location("cluster_validate", ROOT / "cluster" / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = _load_validator()


@pytest.fixture
def config() -> dict:
    return validate.load(CLUSTER_YAML)


def check(config: dict, repo: Path = ROOT) -> str:
    return validate.check_cluster(config, base=repo, repo=repo)


def gpu_types(config: dict) -> dict:
    head = config["head_node_type"]
    return {name: kind for name, kind in config["available_node_types"].items()
            if name != head and validate.GPU_INSTANCE.match(kind["node_config"]["InstanceType"])}


def test_the_cluster_file_passes_rays_checks_and_ours(config):
    summary = check(config)
    assert "ray.worker.gpu 0-4 x g5.xlarge (1 GPU, 4 CPU)" in summary
    assert config["provider"]["type"] == "aws"


def test_validation_contacts_no_cloud(config, monkeypatch):
    """ray up's offline part only: no socket, no boto3 (AWS is reached only after these checks)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for module in ("boto3", "botocore"):
        monkeypatch.setitem(sys.modules, module, None)  # importing it now raises ImportError
    assert check(config)


def test_gpu_workers_declare_their_gpus_and_start_from_zero(config):
    workers = gpu_types(config)
    assert workers, "no GPU worker node type"
    for name, kind in workers.items():
        assert kind["resources"].get("GPU", 0) >= 1, name
        assert kind["min_workers"] == 0, name
        assert kind["max_workers"] >= 1, name


def test_the_driver_on_the_head_waits_for_gpu_nodes_and_plans_for_all_of_them(config):
    """What the README says the search does on this cluster at first, with only the head up: it reads
    the node types from the config ``ray up`` leaves on the head, waits for a GPU node instead of
    refusing, and runs 4 nodes x 4 trials at --gpus-per-trial 0.25."""
    from platform import cluster as ray_cluster

    state, node_types = ray_cluster.node_types_of_config(validate.ray_checks(config))
    head = {"CPU": 8.0}
    cluster = ray_cluster.Cluster(address="auto", cpus=8, gpus=0, max_node_cpus=8, max_node_gpus=0,
                                  nodes=(head,), node_types=node_types, autoscaler=state, joined=True)
    assert ray_cluster.can_have_gpus(cluster)
    assert ray_cluster.check_fits(cluster, 1.0, 0.25).verdict == "wait"
    assert ray_cluster.default_concurrency(cluster, 1.0, 0.25) == 16


def test_the_repository_reaches_every_node_and_is_installed_there(config):
    prepared = validate.ray_checks(config)
    mounts = {remote: local for remote, local in prepared["file_mounts"].items()}
    assert mounts["~/spectra-studies"] == "."  # file_mounts go to the head, and from it to each worker
    assert {"/.venv/", "/runs/", "/.git/"} <= set(prepared["rsync_exclude"])
    install = '~/venv/bin/pip install -q -e ~/spectra-studies "ray[default]"'
    assert install in prepared["head_setup_commands"]  # setup_commands, merged by Ray into both
    assert install in prepared["worker_setup_commands"]
    for kind in prepared["available_node_types"].values():
        assert "worker_setup_commands" not in kind  # none replaces the common setup


def test_the_tracking_server_and_dashboard_bind_localhost_only(config):
    start = " ; ".join(config["head_start_ray_commands"])
    assert "bash ~/spectra-studies/cluster/start_mlflow.sh" in start
    assert "--dashboard-host=127.0.0.1" in start
    script = (ROOT / "cluster" / "start_mlflow.sh").read_text().replace("\\\n", " ")
    server = [line for line in script.splitlines() if "/mlflow\" server" in line]
    assert len(server) == 1
    words = shlex.split(server[0])
    assert words[words.index("--host") + 1] == "127.0.0.1"
    assert "0.0.0.0" not in script + start


def test_no_security_group_rule_opens_the_ui_ports(config):
    rules = config["provider"]["security_group"]["IpPermissions"]
    for rule in rules:
        for port in (5000, 8265, 8080):
            assert not (rule.get("FromPort", -1) <= port <= rule.get("ToPort", -1)), rule


def test_the_cluster_scripts_are_valid_bash():
    for script in sorted((ROOT / "cluster").glob("*.sh")):
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


# Each malformed copy and what the one error line must say.
def _without_node_config(c):
    del c["available_node_types"]["ray.worker.gpu"]["node_config"]


def _typo_top_level(c):
    c["max_worker"] = c.pop("max_workers")


def _max_below_min(c):
    c["available_node_types"]["ray.worker.gpu"].update(min_workers=0, max_workers=-1)


def _max_below_min_positive(c):
    c["available_node_types"]["ray.worker.gpu"].update(min_workers=3, max_workers=2)


def _gpus_undeclared(c):
    c["available_node_types"]["ray.worker.gpu"]["resources"] = {"CPU": 4}


def _gpus_always_on(c):
    c["available_node_types"]["ray.worker.gpu"]["min_workers"] = 1


def _dashboard_public(c):
    c["head_start_ray_commands"] = [cmd.replace("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0")
                                    for cmd in c["head_start_ray_commands"]]


def _mlflow_public_port(c):
    c["provider"]["security_group"]["IpPermissions"] = [
        {"FromPort": 5000, "ToPort": 5000, "IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]


def _everything_open(c):
    c["provider"]["security_group"]["IpPermissions"] = [
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}]


def _no_install(c):
    c["setup_commands"] = [cmd for cmd in c["setup_commands"] if "pip install" not in cmd]


def _worker_type_skips_install(c):
    c["available_node_types"]["ray.worker.gpu"]["worker_setup_commands"] = ["echo nothing"]


def _repository_not_mounted(c):
    c["file_mounts"] = {}


def _venv_synced(c):
    c["rsync_exclude"] = ["/runs/", "/.git/"]


def _no_mlflow(c):
    c["head_start_ray_commands"] = [cmd for cmd in c["head_start_ray_commands"] if "mlflow" not in cmd]


def _missing_script(c):
    c["setup_commands"][0] = "bash ~/spectra-studies/cluster/no_such_script.sh"


def _no_image(c):
    del c["available_node_types"]["ray.head"]["node_config"]["ImageId"]


def _no_bucket(c):
    c["metadata"]["shared_storage"] = "/home/ubuntu/shared"


MALFORMED = {
    "GPU node type without node_config": (_without_node_config, "'node_config' is a required property"),
    "typo'd top-level key": (_typo_top_level, "'max_worker' was unexpected"),
    "max_workers below min_workers": (_max_below_min_positive, "max_workers 2 is below min_workers 3"),
    "negative max_workers": (_max_below_min, "max_workers -1 is below min_workers 0"),
    "GPUs left undeclared": (_gpus_undeclared, "declare them in resources"),
    "GPU workers that never scale to zero": (_gpus_always_on, "min_workers 1"),
    "dashboard on every interface": (_dashboard_public, "listens on every interface"),
    "MLflow port opened": (_mlflow_public_port, "opens port 5000 (MLflow)"),
    "all ports opened": (_everything_open, "opens port"),
    "project not installed": (_no_install, "none installs the project"),
    "a worker type replacing the install": (_worker_type_skips_install, "of ray.worker.gpu: none installs"),
    "repository not mounted": (_repository_not_mounted, "no entry copies the repository"),
    ".venv copied to the nodes": (_venv_synced, "rsync_exclude: add .venv"),
    "no tracking server": (_no_mlflow, "no MLflow tracking server"),
    "a script the repository lacks": (_missing_script, "does not have"),
    "shared storage not in S3": (_no_bucket, "expected an S3 URI"),
    "Ray's default AMI": (_no_image, "ray.head: no ImageId"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_copy_is_caught(config, name):
    break_it, message = MALFORMED[name]
    broken = copy.deepcopy(config)
    break_it(broken)
    with pytest.raises(validate.ClusterConfigError) as caught:
        check(broken)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_mlflow_server_must_bind_localhost_in_the_script_too(config, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "cluster", repo / "cluster")
    script = repo / "cluster" / "start_mlflow.sh"
    script.write_text(script.read_text().replace("--host 127.0.0.1", "--host 10.0.0.5"))
    mounted = copy.deepcopy(config)
    with pytest.raises(validate.ClusterConfigError, match="the MLflow server binds 10.0.0.5"):
        check(mounted, repo=repo)


def _run_validator(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """As a user runs it: a script (cluster/ on sys.path, not the root), whose `import ray` must get the
    standard-library platform module."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "cluster/validate.py", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_command_line_says_ok_for_the_cluster_file():
    result = _run_validator("cluster.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cluster.yaml: ok (aws us-west-2, head m5.2xlarge, ")
    assert result.stdout.count("\n") == 1


def test_the_command_line_refuses_a_bad_file_in_one_line(config, tmp_path):
    broken = copy.deepcopy(config)
    _typo_top_level(broken)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _run_validator(str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ")
    not_yaml = tmp_path / "not.yaml"
    not_yaml.write_text("provider: [unclosed\n")
    result = _run_validator(str(not_yaml))
    assert result.returncode == 2 and result.stderr.startswith(f"error: {not_yaml}: not valid YAML")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
@pytest.mark.cluster
def test_start_mlflow_binds_localhost_and_restarts_its_own_server(tmp_path):
    """cluster/start_mlflow.sh for real (a local artifact store stands in for S3): /health answers on
    127.0.0.1, the port is not open on other addresses, and a second run replaces the first server."""
    home = tmp_path / "home"
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "venv" / "bin" / "mlflow").symlink_to(Path(sys.executable).with_name("mlflow"))
    (home / "spectra-cluster.env").write_text(f"export SPECTRA_STORAGE=file://{tmp_path}/shared\n")
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "SPECTRA_MLFLOW_PORT": str(port)}
    pidfile = home / "mlflow" / "server.pid"
    started = []
    try:
        for _ in range(2):
            subprocess.run(["bash", str(ROOT / "cluster" / "start_mlflow.sh")], env=env, check=True,
                           timeout=240)
            started.append(int(pidfile.read_text()))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
                assert response.status == 200
        assert started[0] != started[1]
        with pytest.raises(ProcessLookupError):
            os.killpg(started[0], 0)  # the first server's whole group is gone
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.stdout.splitlines()}
        assert addresses == {"127.0.0.1"}
    finally:  # stop exactly the servers this test started, each with its process group
        if pidfile.exists():
            started.append(int(pidfile.read_text()))
        for pid in set(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while started and time.monotonic() < deadline:
            try:
                os.killpg(started[-1], 0)
                time.sleep(0.5)
            except ProcessLookupError:
                break
