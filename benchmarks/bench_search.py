"""What Ray Tune costs and gains us on this machine, measured in one run (issue "Foundation II"):

1. Concurrency: the trial phase (first trial start to last trial end, from MLflow) of 4 identical
   fixed configs (every searched key fixed with --set, --scheduler fifo) at --max-concurrent 2
   --cpus-per-trial 1 against --max-concurrent 1. Measured at the smoke budget (as the issue asks)
   and with longer smoke trials, where each trial has real work to overlap.
2. Overhead: a quick search at --max-concurrent 1 (wall time of the whole command, Ray start
   included) against the same configs trained inline in one process with the same torch thread count.

    python benchmarks/bench_search.py [--overhead-trials 3] [--skip-overhead]

Prints figures and ratios; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXED = ["--set", "mask.scheme=MS4", "--set", "mask.tau_low=0.3", "--set", "mask.tau_high=0.7",
         "--set", "loss.gamma=0.3", "--set", "mask.fill=-1"]


def run_search(args: list[str], workdir: Path) -> float:
    """Wall seconds of one `python -m platform.search` (which starts its own local Ray)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "platform.search", "teanet_masks", *args], cwd=workdir,
                            env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"search failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return seconds


def child_runs(workdir: Path) -> list:
    sys.path.insert(0, str(ROOT))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("teanet_masks")
    return [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]


def trial_phase_s(workdir: Path) -> float:
    runs = child_runs(workdir)
    return (max(r.info.end_time for r in runs) - min(r.info.start_time for r in runs)) / 1000


def concurrency(extra: list[str], label: str) -> None:
    phases = {}
    for concurrent in (1, 2):
        with tempfile.TemporaryDirectory() as directory:
            args = ["--budget", "smoke", "--trials", "4", "--scheduler", "fifo", "--cpus-per-trial", "1",
                    "--max-concurrent", str(concurrent), *FIXED, *extra]
            wall = run_search(args, Path(directory))
            phases[concurrent] = trial_phase_s(Path(directory))
            print(f"  {label}: --max-concurrent {concurrent}: trial phase {phases[concurrent]:6.1f} s "
                  f"(whole command {wall:5.1f} s)")
    print(f"  {label}: speed-up of the trial phase {phases[1] / phases[2]:.2f}× (target ≥ 1.5×)")


def overhead(trials: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        wall = run_search(["--budget", "quick", "--trials", str(trials), "--max-concurrent", "1",
                           "--cpus-per-trial", "1", "--scheduler", "fifo"], workdir)
        configs = [{k: v for k, v in r.data.params.items()} for r in child_runs(workdir)]
    inline = train_inline(configs)
    print(f"  search of {trials} quick trials at --max-concurrent 1: {wall:6.1f} s (Ray start included)")
    print(f"  the same configs inline, 1 torch thread:        {inline:6.1f} s")
    print(f"  ratio {wall / inline:.3f} (target ≤ 1.20)")


def train_inline(params: list[dict[str, str]]) -> float:
    """Train the configs one after another in a fresh process on one thread, as a 1-CPU trial does."""
    code = f"""
import sys, time, json
sys.path.insert(0, {str(ROOT)!r})
import torch
torch.set_num_threads(1)
from trials.teanet_config import FIELDS
from trials.teanet import run_trial
configs = json.loads(sys.argv[1])
start = time.perf_counter()
for params in configs:
    run_trial({{k: FIELDS[k].parse(k, v) for k, v in params.items()}})
print(time.perf_counter() - start)
"""
    import json

    start = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code, json.dumps(params)], check=True, env=env,
                   capture_output=True, text=True)
    return time.perf_counter() - start  # the whole process: imports included, as for the search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--overhead-trials", type=int, default=3)
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs")
    print("Concurrency (4 identical fixed configs, fifo):")
    concurrency([], "smoke (2 epochs)")
    concurrency(["--set", "train.epochs=60"], "smoke, 60 epochs")
    if not args.skip_overhead:
        print("Overhead:")
        overhead(args.overhead_trials)


if __name__ == "__main__":
    main()
