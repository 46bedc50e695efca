"""A TeaNet study at a budget, as a user runs it (issue 9, Speed): wall time of the whole command on
this machine (a local Ray sized to it, Ray start included) and the study's own table (teanet_synthetic:
the 5 × 4 grid; teanet_baselines: the methods beside Table 3; with their standard errors / stds).

    python benchmarks/bench_teanet_studies.py teanet_synthetic [--budget quick] [other search options]
    python benchmarks/bench_teanet_studies.py teanet_baselines --budget quick

Runs in a fresh temporary folder (its own MLflow, Optuna and Ray stores; kept with --keep). Prints the
load average before and after, since the figures depend on what else runs; asserts nothing.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", choices=("teanet_synthetic", "teanet_baselines", "teanet_gamma"))
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    args, extra = parser.parse_known_args()  # the rest goes to platform.search
    args.extra = [a for a in extra if a != "--"]
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{args.study}-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)  # a local Ray of its own
    command = [sys.executable, "-m", "platform.search", args.study, "--budget", args.budget, *args.extra]
    print(f"$ {' '.join(command[1:])}   (in {folder})")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    print(done.stdout[-12000:])
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
    print(f"exit code {done.returncode}; wall time {wall:.0f} s ({wall / 60:.1f} min); load average after: "
          f"{os.getloadavg()[0]:.2f}")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(folder)], check=False)


if __name__ == "__main__":
    main()
