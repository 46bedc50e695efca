"""ASHA against FIFO on one study, same seed, side by side (issue "Trust the record", part 4).

Runs ``python -m platform.search STUDY --budget B --seed S --scheduler asha`` and the same with
``fifo`` (each in a fresh folder, each starting its own local Ray), then reads both records back from
MLflow: trials stopped by the scheduler, trial-epochs spent, the best objective found (and that trial's
test metric), wall time of the whole command.

    python benchmarks/bench_schedulers.py [--study teanet_masks] [--budget quick] [--seed 7] [--trials N]

Prints figures and ratios; asserts nothing about time. With the same seed the two searches start from
the same TPE proposals; they part once ASHA stops a trial (TPE then learns from a pruned value).
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


def run(study: str, budget: str, seed: int, scheduler: str, trials: int | None, workdir: Path) -> float:
    """Wall seconds of one search (its own local Ray)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    args = [study, "--budget", budget, "--seed", str(seed), "--scheduler", scheduler]
    args += ["--trials", str(trials)] if trials else []
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "platform.search", *args], cwd=workdir, env=env,
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{scheduler} search failed ({result.returncode}):\n"
                           f"{result.stdout}\n{result.stderr}")
    return seconds


def figures(study_name: str, workdir: Path) -> dict[str, float | str]:
    from mlflow.tracking import MlflowClient

    from search_spaces import load_study

    study = load_study(study_name)
    client = MlflowClient(f"sqlite:///{workdir / 'runs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study_name)
    runs = [run for run in client.search_runs([experiment.experiment_id])
            if run.data.tags.get("search_role") != "parent"]
    metric, test = study.objective.metric, study.result_columns[0]
    finished = [r for r in runs if r.info.status == "FINISHED" and metric in r.data.metrics]
    sign = 1 if study.objective.mode == "max" else -1
    best = max(finished, key=lambda r: sign * r.data.metrics[metric])
    return {
        "trials": len(runs),
        "stopped by the scheduler": sum(r.data.tags.get("stop_reason") == "scheduler" for r in runs),
        "trial-epochs spent": sum(r.data.metrics.get("epochs", 0) for r in runs),
        f"best {metric}": best.data.metrics[metric],
        f"its {test}": best.data.metrics.get(test, float("nan")),
        "best trial": best.info.run_name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="teanet_masks")
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--trials", type=int)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    table: dict[str, dict] = {}
    for scheduler in ("asha", "fifo"):
        with tempfile.TemporaryDirectory(prefix=f"bench-{scheduler}-") as folder:
            seconds = run(args.study, args.budget, args.seed, scheduler, args.trials, Path(folder))
            table[scheduler] = {**figures(args.study, Path(folder)), "wall time (s)": round(seconds, 1)}
    print(f"{args.study} at the {args.budget} budget, seed {args.seed}, {os.cpu_count()} CPUs")
    print(f"{'':28} {'ASHA':>14} {'FIFO':>14} {'ASHA/FIFO':>10}")
    for key in table["asha"]:
        asha, fifo = table["asha"][key], table["fifo"][key]
        ratio = f"{asha / fifo:.2f}" if isinstance(asha, (int, float)) and fifo else ""
        shown = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in (asha, fifo)]
        print(f"{key:28} {shown[0]:>14} {shown[1]:>14} {ratio:>10}")


if __name__ == "__main__":
    main()
