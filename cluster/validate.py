"""Check a cluster file for ``ray up`` offline, before it costs anything.

    python cluster/validate.py cluster.yaml      (from the repository root, like ``ray up``)

First what ``ray up`` itself checks before it touches a cloud: the JSON schema of
``ray/autoscaler/ray-schema.json``, then Ray's ``prepare_config`` (its provider's defaults filled in, setup
commands merged) and ``validate_config``. None of them calls AWS; ``ray up`` contacts the cloud only
afterwards. Then what this project needs of a cluster: GPU workers that declare their GPUs and autoscale
from zero, the repository and its installation on every node, and the tracking server and dashboards
kept off the internet. Prints ``cluster.yaml: ok (...)``, or one ``error:`` line and exits 2.

Imports nothing of the repository (run as a script, Python puts cluster/ on the path, not the root).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
# The UIs are reached through SSH tunnels only: MLflow, the Ray dashboard, optuna-dashboard.
PRIVATE_PORTS = {5000: "MLflow", 8265: "the Ray dashboard", 8080: "optuna-dashboard"}
MUST_NOT_SYNC = (".venv", "runs", ".git")  # rsync_exclude must keep these on the user's machine
COMMAND_LISTS = ("initialization_commands", "head_setup_commands", "worker_setup_commands",
                 "head_start_ray_commands", "worker_start_ray_commands")
# AWS instance families with NVIDIA GPUs (g4dn, g5, g6, g6e, p3, p4d, p5, ...).
GPU_INSTANCE = re.compile(r"^(g\d|p\d)[a-z]*\.")


class ClusterConfigError(ValueError):
    """What is wrong with a cluster file, in one line."""


def load(path: Path) -> dict[str, Any]:
    """The cluster file as a mapping; ClusterConfigError if it is not YAML or not a mapping."""
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ClusterConfigError(f"cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ClusterConfigError(f"not valid YAML ({getattr(error, 'problem', error)}{where})") from None
    if not isinstance(config, dict):
        raise ClusterConfigError(f"expected a mapping, got {type(config).__name__}")
    return config


def check_cluster(config: dict[str, Any], base: Path | None = None, repo: Path = REPO_ROOT) -> str:
    """Validate as ``ray up`` does, then this project's needs. ``base`` is the directory ``ray up`` runs
    in (relative file_mounts are resolved against it; default: the current directory). Returns a
    one-line summary; raises ClusterConfigError."""
    base = (base or Path.cwd()).resolve()
    prepared = ray_checks(config)
    repo_dir = _repo_mount(prepared, base, repo)
    _check_rsync_exclude(prepared)
    _check_scripts_exist(prepared, repo_dir, repo)
    _check_shared_storage(prepared)
    _check_node_types(prepared)
    _check_installs(prepared, repo_dir)
    _check_head_services(prepared, repo_dir, repo)
    _check_security_group(prepared)
    return _summary(prepared)


def ray_checks(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's own offline checks, in ``ray up``'s order; returns the prepared config."""
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    logging.getLogger("ray.autoscaler").setLevel(logging.WARNING)  # not its "setting max workers" notes
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    schema = json.loads(schema_path.read_text())
    try:
        jsonschema.validate(config, schema)
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except jsonschema.ValidationError as error:
        where = ".".join(str(part) for part in error.absolute_path) or "the top level"
        raise ClusterConfigError(f"{where}: {error.message}") from None
    except (ValueError, KeyError, TypeError, AssertionError, RuntimeError, NotImplementedError) as error:
        raise ClusterConfigError(f"Ray refuses it: {type(error).__name__}: {error}") from None
    return prepared


def _repo_mount(config: dict[str, Any], base: Path, repo: Path) -> str:
    """The remote directory that file_mounts fills with this repository (Ray copies file_mounts to the
    head and from there to every worker)."""
    for remote, local in config["file_mounts"].items():
        local_path = Path(os.path.expanduser(local))
        if (local_path if local_path.is_absolute() else base / local_path).resolve() == repo.resolve():
            return remote.rstrip("/")
    raise ClusterConfigError(f"file_mounts: no entry copies the repository ({repo}) to the nodes "
                             f"(relative paths are taken from {base}, where `ray up` runs)")


def _check_rsync_exclude(config: dict[str, Any]) -> None:
    excluded = {pattern.strip("/") for pattern in config["rsync_exclude"]}
    missing = [name for name in MUST_NOT_SYNC if name not in excluded]
    if missing:
        raise ClusterConfigError(f"rsync_exclude: add {', '.join(missing)} (never copied to the nodes)")


def _check_scripts_exist(config: dict[str, Any], repo_dir: str, repo: Path) -> None:
    """Every repository file a command names (``bash <repo dir>/cluster/x.sh``) is in the checkout."""
    for key in COMMAND_LISTS:
        for command in config[key]:
            for words in _shell_commands(command):
                for word in words:
                    if word.startswith(repo_dir + "/") and not (repo / word[len(repo_dir) + 1:]).exists():
                        raise ClusterConfigError(f"{key}: `{command}` uses {word}, which the repository "
                                                 f"does not have")


def _check_shared_storage(config: dict[str, Any]) -> None:
    storage = config.get("metadata", {}).get("shared_storage")
    if not isinstance(storage, str) or not storage.startswith("s3://") or len(storage) <= len("s3://"):
        raise ClusterConfigError(f"metadata.shared_storage: expected an S3 URI (s3://bucket/prefix) shared "
                                 f"by every node, got {storage!r}")


def _check_node_types(config: dict[str, Any]) -> None:
    head = config["head_node_type"]
    for name, kind in config["available_node_types"].items():
        if config["provider"]["type"] == "aws" and not kind["node_config"].get("ImageId"):
            raise ClusterConfigError(f"available_node_types.{name}: no ImageId; Ray's default AMI (Deep "
                                     f"Learning AMI Ubuntu 18.04 V71, CUDA 11.2) is too old for torch 2")
    workers = {name: kind for name, kind in config["available_node_types"].items() if name != head}
    for name, kind in workers.items():
        if kind["max_workers"] < kind["min_workers"]:
            raise ClusterConfigError(f"available_node_types.{name}: max_workers {kind['max_workers']} is "
                                     f"below min_workers {kind['min_workers']}")
        instance = str(kind["node_config"].get("InstanceType", ""))
        gpus = kind["resources"].get("GPU", 0)
        if GPU_INSTANCE.match(instance) and not gpus:
            raise ClusterConfigError(f"available_node_types.{name}: {instance} has GPUs; declare them in "
                                     f"resources (e.g. {{\"GPU\": 1}}): Ray fills them in only at launch")
        if gpus and kind["min_workers"] != 0:
            raise ClusterConfigError(f"available_node_types.{name}: min_workers {kind['min_workers']}: GPU "
                                     f"workers start at 0 and are added when trials ask for GPUs")
    if not any(kind["resources"].get("GPU", 0) and kind["max_workers"] > 0 for kind in workers.values()):
        raise ClusterConfigError("available_node_types: no worker node type with GPUs in its resources "
                                 "and max_workers above 0")


def _check_installs(config: dict[str, Any], repo_dir: str) -> None:
    """Every node installs the project: ``pip install -e <repo dir>`` in the setup commands that run on
    the head and on each worker type (a node type's own worker_setup_commands replace the common ones)."""
    head = config["head_node_type"]
    setups = {"the head": config["head_setup_commands"]}
    for name, kind in config["available_node_types"].items():
        if name != head:
            setups[name] = kind.get("worker_setup_commands", config["worker_setup_commands"])
    for node, commands in setups.items():
        if not any(_installs_editable(command, repo_dir) for command in commands):
            raise ClusterConfigError(f"setup commands of {node}: none installs the project "
                                     f"(`pip install -e {repo_dir}`)")


def _installs_editable(command: str, repo_dir: str) -> bool:
    for words in _shell_commands(command):
        names = [Path(word).name for word in words]
        if "pip" in names and "install" in words:
            editable = {words[i + 1].rstrip("/") for i, word in enumerate(words[:-1])
                        if word in ("-e", "--editable")}
            if repo_dir in editable:
                return True
    return False


def _check_head_services(config: dict[str, Any], repo_dir: str, repo: Path) -> None:
    """The head's start commands (and the repository scripts they run) start Ray and MLflow bound to
    127.0.0.1, and nothing binds 0.0.0.0."""
    commands = [words for command in config["head_start_ray_commands"]
                for words in _shell_commands(command)]
    scripts = [_script_commands(words, repo_dir, repo) for words in commands]
    everything = commands + [words for script in scripts for words in script]
    for words in everything:
        if any("0.0.0.0" in word for word in words):
            raise ClusterConfigError(f"head start: `{shlex.join(words)}` listens on every interface; "
                                     f"bind to 127.0.0.1 and reach it through SSH")
    ray_heads = [w for w in everything if _is(w, "ray", "start") and "--head" in w]
    if not ray_heads:
        raise ClusterConfigError("head_start_ray_commands: no `ray start --head`")
    for words in ray_heads:
        host = _option(words, "--dashboard-host")
        if host not in (None, "127.0.0.1", "localhost"):
            raise ClusterConfigError(f"head start: the Ray dashboard binds {host}; use 127.0.0.1")
    servers = [w for w in everything if _is(w, "mlflow", "server")]
    if not servers:
        raise ClusterConfigError("head_start_ray_commands: no MLflow tracking server is started on the head")
    for words in servers:
        host = _option(words, "--host", "-h")
        if host != "127.0.0.1":
            raise ClusterConfigError(f"head start: the MLflow server binds {host or 'its default'}; "
                                     f"give it --host 127.0.0.1")


def _check_security_group(config: dict[str, Any]) -> None:
    rules = config["provider"].get("security_group", {}).get("IpPermissions", [])
    for rule in rules:
        opened_to = rule.get("IpRanges") or rule.get("Ipv6Ranges") or rule.get("PrefixListIds")
        if not opened_to:
            continue  # a rule between security groups (the cluster's own nodes)
        low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
        all_ports = str(rule.get("IpProtocol")) == "-1" or low == -1
        for port, what in PRIVATE_PORTS.items():
            if all_ports or low <= port <= high:
                raise ClusterConfigError(f"provider.security_group opens port {port} ({what}) to "
                                         f"{opened_to}: reach it through SSH instead")


def _summary(config: dict[str, Any]) -> str:
    provider = config["provider"]
    head = config["head_node_type"]
    kinds = config["available_node_types"]
    parts = [f"{provider['type']} {provider.get('region', '')}".strip(),
             f"head {kinds[head]['node_config'].get('InstanceType', head)}"]
    for name, kind in kinds.items():
        if name != head:
            parts.append(f"{name} {kind['min_workers']}-{kind['max_workers']} x "
                         f"{kind['node_config'].get('InstanceType', '?')} "
                         f"({kind['resources'].get('GPU', 0)} GPU, {kind['resources'].get('CPU', '?')} CPU)")
    storage = config.get("metadata", {}).get("shared_storage")
    if storage:
        note = " (a placeholder: set it before `ray up`)" if "CHANGE-ME" in storage else ""
        parts.append(f"shared storage {storage}{note}")
    return ", ".join(parts)


def _shell_commands(command: str) -> list[list[str]]:
    """The simple commands of a shell line, split on ; && || | (good enough for setup lines)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return [command.split()]
    found, current = [], []
    for word in words:
        pieces = re.split(r"(;|&&|\|\||\|)", word)
        for piece in pieces:
            if piece in (";", "&&", "||", "|"):
                found.append(current)
                current = []
            elif piece:
                current.append(piece)
    found.append(current)
    return [words for words in found if words]


def _script_commands(words: list[str], repo_dir: str, repo: Path) -> list[list[str]]:
    """When a command runs a script of this repository (``bash <repo dir>/cluster/x.sh``), that script's
    commands, with backslash continuations joined and shell quoting removed."""
    paths = [w for w in words if w.startswith(repo_dir + "/") and w.endswith(".sh")]
    found = []
    for path in paths:  # _check_scripts_exist has made sure they exist
        text = (repo / path[len(repo_dir) + 1:]).read_text().replace("\\\n", " ")
        for line in text.splitlines():
            found += _shell_commands(line)
    return found


def _is(words: list[str], program: str, subcommand: str) -> bool:
    for i, word in enumerate(words[:-1]):
        if Path(word.strip('"')).name == program and words[i + 1] == subcommand:
            return True
    return False


def _option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python cluster/validate.py CLUSTER_YAML", file=sys.stderr)
        return 2
    path = Path(args[0])
    try:
        summary = check_cluster(load(path))
    except ClusterConfigError as error:
        print(f"error: {path}: {error}", file=sys.stderr)
        return 2
    print(f"{path}: ok ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
