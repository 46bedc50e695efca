"""The same smoke search on one node with 2 CPUs against two nodes with 1 CPU each, on this host.

    python benchmarks/bench_nodes.py [--study teanet_masks] [--trials 4] [--seed 1]

One: ``ray start --head --num-cpus=2``. Two: ``ray start --head --num-cpus=1`` and ``ray start --address
--num-cpus=1`` (token mode, DESIGN.md Known ground). Each cluster has its own temp dirs and auth token and
is stopped exactly (tests/e2e_support.py); each search runs `python -m platform.search` in a fresh folder
with 2 trials at once, and is read back from its MLflow store. Prints wall times and their ratio, and the
trials' own mean training time; asserts nothing. Both "nodes" share this host's 2 cores, so the figure is
what the second raylet and the object transfer cost, not what a second machine would gain.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e_support import (  # noqa: E402  (needs the root on sys.path)
    client_for,
    join_ray_node,
    own_auth_token,
    search,
    start_ray_cluster,
    stop_ray_cluster,
)


def _timed_search(study: str, trials: int, seed: int, address: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bn", dir="/tmp"))
    try:
        return _read_back(study, trials, seed, address, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _read_back(study: str, trials: int, seed: int, address: str, work: Path) -> dict:
    args = [study, "--budget", "smoke", "--trials", str(trials), "--seed", str(seed), "--scheduler", "fifo",
            "--max-concurrent", "2"]
    start = time.perf_counter()
    result = search(args, work, address, timeout=1800)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"search failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    client = client_for(work)
    runs = client.search_runs([client.get_experiment_by_name(study).experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    nodes = {r.data.tags.get("node_id") for r in children}
    train = [r.data.metrics["train_time_s"] for r in children if "train_time_s" in r.data.metrics]
    return {"wall_s": wall, "trials": len(children), "nodes_used": len(nodes),
            "train_time_s": statistics.mean(train) if train else float("nan")}


def one_node(args: argparse.Namespace) -> dict:
    address, temp = start_ray_cluster(num_cpus=2)
    try:
        return _timed_search(args.study, args.trials, args.seed, address)
    finally:
        stop_ray_cluster(temp)


def two_nodes(args: argparse.Namespace) -> dict:
    address, temp = start_ray_cluster(num_cpus=1)
    temps = [temp]
    try:
        temps.append(join_ray_node(address, num_cpus=1))
        return _timed_search(args.study, args.trials, args.seed, address)
    finally:
        for folder in reversed(temps):  # the joined node first, then the head
            stop_ray_cluster(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="teanet_masks")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with own_auth_token():
        one = one_node(args)
        two = two_nodes(args)
    print(f"{args.study}, smoke budget, {args.trials} trials, 2 at once, FIFO, seed {args.seed} "
          "(2-core host, shared with other work: noisy)")
    print(f"{'cluster':<26}{'wall s':>9}{'trials':>8}{'nodes used':>12}{'mean train_time_s':>19}")
    for name, f in (("1 node x 2 CPU", one), ("2 nodes x 1 CPU", two)):
        print(f"{name:<26}{f['wall_s']:>9.1f}{f['trials']:>8}{f['nodes_used']:>12}{f['train_time_s']:>19.2f}")
    print(f"ratio two nodes / one node: wall {two['wall_s'] / one['wall_s']:.2f}, "
          f"train_time_s {two['train_time_s'] / one['train_time_s']:.2f}")


if __name__ == "__main__":
    main()
