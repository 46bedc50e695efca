"""``python -m platform.doctor``: what this installation runs on, and whether the stack works here.

Prints the versions of the stack, the host's CPUs and GPUs, and (with ``--full``) exercises each
library for real under our ``platform`` stand-in: a torch step, an Optuna study, an MLflow run in a
throw-away SQLite store and a Ray task on a local one-CPU instance. Paste its output into bug reports.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile

import platform

STACK = ("torch", "ray", "optuna", "mlflow", "numpy", "pandas")


def versions() -> dict[str, str]:
    """Installed versions of the stack ('missing' where a package is not installed)."""
    found = {}
    for name in STACK:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def host() -> dict[str, str]:
    """The facts of this host that decide how many trials fit at once."""
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpus": str(os.cpu_count()),
        "gpus": ", ".join(gpus) or "none",
    }


def _check_torch() -> str:
    import torch

    layer = torch.nn.Linear(4, 1)
    loss = layer(torch.ones(2, 4)).pow(2).mean()
    loss.backward()
    return f"backward ok on {torch.get_num_threads()} threads"


def _check_tables() -> str:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"x": np.arange(6), "g": [0, 1] * 3})
    return f"groupby sums {frame.groupby('g')['x'].sum().tolist()}"


def _check_optuna() -> str:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=5)
    return f"{len(study.trials)} trials, best {study.best_value:.3g}"


def _check_mlflow(scratch: str) -> str:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{scratch}/mlflow.db")
    experiment = mlflow.create_experiment("doctor", artifact_location=f"{scratch}/artifacts")
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_metric("accuracy", 1.0)
    return f"run {run.info.run_id[:8]} logged to SQLite"


def _square(x: int) -> int:  # pickled by value: this module is __main__ under `python -m`
    return x * x


def _check_ray(scratch: str) -> str:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=1, include_dashboard=False, _temp_dir=f"{scratch}/ray", log_to_driver=False)
    try:
        return f"remote task returned {ray.get(ray.remote(_square).remote(7))}"
    finally:
        ray.shutdown()


def run_checks() -> dict[str, str]:
    """Exercise each library of the stack; returns one line per library ('FAILED: ...' on error)."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="doctor-", dir="/tmp") as scratch:
        checks = {
            "torch": _check_torch,
            "numpy+pandas": _check_tables,
            "optuna": _check_optuna,
            "mlflow": lambda: _check_mlflow(scratch),
            "ray": lambda: _check_ray(scratch),
        }
        for name, check in checks.items():
            try:
                results[name] = check()
            except Exception as error:  # report every failing library, not only the first
                results[name] = f"FAILED: {type(error).__name__}: {error}"
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform.doctor", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="also run each library for real (~15 s)")
    args = parser.parse_args(argv)
    for section in (versions(), host()):
        for key, value in section.items():
            print(f"{key:>14}: {value}")
    if not args.full:
        return 0
    results = run_checks()
    for name, outcome in results.items():
        print(f"{name:>14}: {outcome}")
    return 1 if any(v.startswith("FAILED") for v in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
