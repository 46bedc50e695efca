"""Seconds per epoch and peak memory of the seven HED models at the paper's size (1581 training rows ×
4023 points, full batch) on this machine, beside the paper's Table 1 (a Tesla P100: shown, not compared).

    python benchmarks/bench_hed_models.py [--epochs 2] [--models cnn lstm ...]

Each model runs in a fresh process (so one model's memory does not count for the next), on the
simulated ramp's real training set, with the trial's own code. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, torch
sys.path.insert(0, {root!r})
from search_spaces import load_study
from trials.hed import run_trial
study = load_study("hed_architectures")
config = study.config_for("paper", {{"model.name": {name!r}, "train.epochs": {epochs}}})
reports = []
run_trial(config, reports.append)
print(json.dumps({{"seconds": [r["train_time_s"] for r in reports], "memory": reports[-1]["peak_memory_mb"],
                  "params": reports[-1]["trainable_params"], "threads": torch.get_num_threads()}}))
"""


def measure(name: str, epochs: int) -> dict:
    code = CHILD.format(root=str(ROOT), name=name, epochs=epochs)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from search_spaces.reference import read_reference
    from trials.hed_config import HED_MODELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--models", nargs="+", default=list(HED_MODELS))
    args = parser.parse_args()
    paper = {row["model"]: row for row in read_reference("hed_table1")}
    header = f"{'model':<14} {'params':>10} {'s/epoch':>8} {'peak MB':>8}"
    print(f"{header}   paper (P100): {'s/epoch':>8} {'GB':>5}")
    for name in args.models:
        result = measure(name, args.epochs)
        ref = paper[name]
        paper_epoch = float(ref["train_time_s"]) / float(ref["epochs"])
        if "error" in result:
            print(f"{name:<14} failed: {result['error']}")
            continue
        per_epoch = result["seconds"][-1] - (result["seconds"][-2] if len(result["seconds"]) > 1 else 0)
        print(f"{name:<14} {result['params']:>10,} {per_epoch:>8.2f} {result['memory']:>8.0f}   "
              f"{'':>13} {paper_epoch:>8.3f} {float(ref['memory_gb']):>5.1f}")
    print("\ns/epoch here: the last epoch's training time (full batch, 2 CPU threads, evaluation excluded);"
          "\npeak MB here: resident memory growth of the process (CPU); paper: GPU memory after training.")


if __name__ == "__main__":
    main()
