"""How many trial results per second the driver handles, with MLflow logging off, to a local SQLite
store, and to an ``mlflow server`` (Ray's docs report 50–100 results/s with logging).

    python benchmarks/bench_driver_throughput.py [--trials 8] [--reports 150] [--cpus-per-trial 0.5]
                                                 [--profile]

Each mode is one real ``platform.search`` of teanet_masks (own folder, own local Ray, FIFO) whose task is
swapped for :func:`run_trial` below: no training, just a full report every few ms, so the driver (Tune's
loop, our TrialRecorder and progress line, MLflow) is the bottleneck. The driver counts results and MLflow
client calls between the first and the last result. "off" skips TrialRecorder.on_trial_result only (runs
are still opened and closed); "sqlite"/"server" is the recorder as shipped (a run's results written at
most once a second, in one log_batch, and before the run closes: platform/tracking.py);
"*_per_result" sets its interval to 0, one log_batch per result (the recorder before the batching).
MLflow's own async logging (``synchronous=False``) was tried too and gained nothing on 2 cores: the
queue's writes compete with Tune's loop for the same interpreter.
--profile adds a run with SQLite logging under cProfile and prints where the driver's time goes.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_REPORTS = int(os.environ.get("BENCH_REPORTS", "150"))
_INTERVAL_S = 0.003
_MODES = ("off", "sqlite_per_result", "sqlite", "server_per_result", "server")


def run_trial(config: dict, report, **extra) -> dict:
    """A trial that only reports: a complete snapshot (the contract's keys and a dozen metrics) every
    few ms. Imported by the workers as benchmarks.bench_driver_throughput:run_trial."""
    start = time.perf_counter()
    last: dict = {}
    for epoch in range(1, _REPORTS + 1):
        time.sleep(_INTERVAL_S)
        last = {"epochs": epoch, "planned_epochs": _REPORTS, "progress": epoch / _REPORTS,
                "train_time_s": time.perf_counter() - start, "peak_memory_mb": 1.0, "trainable_params": 1000,
                "train_loss": 1.0 / epoch, "val_loss": 1.0 / epoch, "val_accuracy": epoch / _REPORTS,
                "accuracy": epoch / _REPORTS, "recon_mse": 0.1, "samples_per_s": 1000.0}
        report(last)
    return last


# --- the driver of one mode (a child process) ----------------------------------------------------------
def _child(mode: str, tracking_uri: str | None, trials: int, cpus: float, profile: str | None) -> None:
    import dataclasses

    from mlflow.tracking import MlflowClient

    import platform.options
    import platform.search
    import platform.tracking
    from search_spaces import load_study

    task = "benchmarks.bench_driver_throughput:run_trial"
    study = dataclasses.replace(load_study("teanet_masks"), task=task)
    platform.options.load_study = lambda name: study
    seen: list[float] = []
    calls = {"n": 0, "at_first": 0, "at_last": 0}
    original = platform.tracking.TrialRecorder.on_trial_result
    if mode.endswith("_per_result"):
        platform.tracking.FLUSH_INTERVAL_S = 0.0

    def on_trial_result(self, *args, **kwargs):
        if not seen:
            calls["at_first"] = calls["n"]
        seen.append(time.perf_counter())
        if mode != "off":
            original(self, *args, **kwargs)
        calls["at_last"] = calls["n"]

    platform.tracking.TrialRecorder.on_trial_result = on_trial_result
    for name in ("log_batch", "create_run", "set_terminated", "set_tag", "log_text", "log_metric",
                 "update_run", "search_runs", "get_run"):
        setattr(MlflowClient, name, _counted(getattr(MlflowClient, name), calls))
    argv = ["teanet_masks", "--budget", "smoke", "--trials", str(trials), "--scheduler", "fifo",
            "--cpus-per-trial", str(cpus), "--seed", "1"]
    argv += ["--tracking-uri", tracking_uri] if tracking_uri else []
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        code = profiler.runcall(platform.search.main, argv)
        profiler.dump_stats(profile)
    else:
        code = platform.search.main(argv)
    window = seen[-1] - seen[0] if len(seen) > 1 else float("nan")
    print("RESULT " + json.dumps({"code": code, "results": len(seen), "window_s": window,
                                  "mlflow_calls": calls["at_last"] - calls["at_first"]}))


def _counted(method, calls: dict):
    def wrapper(*args, **kwargs):
        calls["n"] += 1
        return method(*args, **kwargs)
    return wrapper


# --- the benchmark ------------------------------------------------------------------------------------
def _mode(mode: str, args: argparse.Namespace, tracking_uri: str | None, profile: str | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bdt", dir="/tmp"))
    # A token of its own: the child imports Ray (platform.tracking) before the CLI would pick the mode.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(work),
           "BENCH_REPORTS": str(args.reports), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_ADDRESS", None)  # a local Ray of its own (a joined cluster would not ship benchmarks/)
    command = [sys.executable, "-m", "benchmarks.bench_driver_throughput", "--child", mode,
               "--trials", str(args.trials), "--cpus-per-trial", str(args.cpus_per_trial)]
    command += ["--tracking-uri", tracking_uri] if tracking_uri else []
    command += ["--profile-file", profile] if profile else []
    try:
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"{mode} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def _start_server(home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", f"sqlite:///{home / 'm.db'}",
                               "--artifacts-destination", str(home / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "2"], cwd=home, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                return server, uri
        except OSError:
            time.sleep(0.5)
    _stop(server)
    raise RuntimeError("mlflow server did not start")


def _stop(server: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def _print_profile(path: str) -> None:
    import pstats

    print("\nWhere the driver's time goes (SQLite logging, cumulative, top 25):")
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=_MODES,
                        help=argparse.SUPPRESS)
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)
    parser.add_argument("--profile-file", help=argparse.SUPPRESS)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--reports", type=int, default=_REPORTS, help="reports per trial")
    parser.add_argument("--cpus-per-trial", type=float, default=0.5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.tracking_uri, args.trials, args.cpus_per_trial, args.profile_file)
        return
    figures: dict[str, dict] = {}
    for mode in ("off", "sqlite_per_result", "sqlite"):
        figures[mode] = _mode(mode, args, None, None)
    profile = None
    if args.profile:
        profile = str(Path(tempfile.gettempdir()) / "bench_driver_throughput.prof")
        figures["sqlite+cProfile"] = _mode("sqlite", args, None, profile)
    home = Path(tempfile.mkdtemp(prefix="bdts", dir="/tmp"))
    server, uri = _start_server(home)
    try:
        for mode in ("server_per_result", "server"):
            figures[mode] = _mode(mode, args, uri, None)
    finally:
        _stop(server)
        shutil.rmtree(home, ignore_errors=True)

    print(f"{args.trials} trials x {args.reports} reports, {args.cpus_per_trial:g} CPU each, "
          f"one report every {_INTERVAL_S * 1000:g} ms per trial (2-core host, shared)")
    print(f"{'MLflow logging':<20}{'results':>9}{'window s':>10}{'results/s':>11}{'MLflow calls/s':>16}"
          f"{'calls/result':>14}{'vs off':>8}")
    base = figures["off"]["results"] / figures["off"]["window_s"]
    for mode, f in figures.items():
        rate = f["results"] / f["window_s"]
        print(f"{mode:<20}{f['results']:>9}{f['window_s']:>10.1f}{rate:>11.1f}"
              f"{f['mlflow_calls'] / f['window_s']:>16.1f}{f['mlflow_calls'] / f['results']:>14.2f}"
              f"{rate / base:>8.2f}")
    if profile:
        _print_profile(profile)


if __name__ == "__main__":
    main()
