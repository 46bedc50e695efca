"""What the end-of-search report costs the driver: the table and plots attached to every search's parent
run (platform.report.attach_report), for searches of a few and of many trials.

    python benchmarks/bench_report.py [--trials 12 60 300]

Each size records that many teanet_masks trials (random MS1–MS5 configs and values) through the real
TrialRecorder into a fresh copy of an MLflow SQLite store, with an Optuna study of the same trials in
SQLite, then times reading the rows back (platform.summary.trial_rows), drawing the plots and logging
them with the table. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.modules.pop("platform", None)  # ours, not the standard module (platform/__init__.py re-exports it)


def record(client, experiment_id: str, study, trials: int, storage: str) -> tuple[str, object]:
    import optuna

    from platform.tracking import TrialRecorder

    tags = {"search_role": "parent", "search_id": "b", "kind": "search"}
    parent = client.create_run(experiment_id, tags=tags)
    recorder = TrialRecorder(client, experiment_id, parent.info.run_id, {"dataset": "lorentz"})
    optuna_study = optuna.create_study(storage=storage, study_name="b", direction="maximize")
    rng = random.Random(0)
    for number in range(trials):
        trial = optuna_study.ask()
        scheme = trial.suggest_categorical("mask.scheme", ["MS1", "MS3"])
        tau = trial.suggest_float("mask.tau", 0.01, 0.5)
        gamma = trial.suggest_float("loss.gamma", 0.05, 0.95)
        value, seconds = rng.random(), rng.uniform(5, 100)
        optuna_study.tell(trial, value)
        config = study.config_for("smoke", {"mask.scheme": scheme, "mask.tau": tau, "loss.gamma": gamma})
        tune_trial = types.SimpleNamespace(trial_id=f"t{number}", config=config,
                                           last_result={"epochs": config["train.epochs"]})
        recorder.on_trial_start(0, [], tune_trial)
        recorder.on_trial_result(0, [], tune_trial, {"val_accuracy": value, "train_time_s": seconds,
                                                     "epochs": config["train.epochs"]})
        recorder.on_trial_complete(0, [], tune_trial)
    return parent.info.run_id, optuna_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[12, 60, 300])
    args = parser.parse_args()
    from mlflow.tracking import MlflowClient

    from platform.report import attach_report
    from platform.summary import trial_rows
    from platform.tracking import open_experiment
    from search_spaces import load_study

    study = load_study("teanet_masks")
    print(f"{'trials':>7} {'read rows s':>12} {'plots+log s':>12}  artifacts")
    for trials in args.trials:
        with tempfile.TemporaryDirectory() as folder:
            client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
            experiment_id = open_experiment(client, "teanet_masks", f"{folder}/artifacts")
            parent, optuna_study = record(client, experiment_id, study, trials, f"sqlite:///{folder}/optuna.db")
            start = time.perf_counter()
            rows = trial_rows(client, experiment_id, parent)
            read = time.perf_counter() - start
            start = time.perf_counter()
            names = attach_report(client, parent, study, rows, "search", optuna_study)
            drawn = time.perf_counter() - start
            written = ", ".join(Path(name).name for name in names)
            print(f"{trials:>7} {read:>12.2f} {drawn:>12.2f}  {len(names)}: {written}")


if __name__ == "__main__":
    main()
