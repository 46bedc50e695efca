"""peak_memory_mb on a reused worker: the same trial run first and third in one process, with another
in between, measured three ways: old (RSS growth from the start), resident (private RSS after returning
freed heap to the OS: trials/measure.py without glibc's mallinfo2) and new (trials/measure.py: bytes
malloc has handed out).

    python benchmarks/bench_memory.py [--epochs 1] [--samples 10] [--sequences ...]

Each sequence and method runs in a fresh process, as on a new Ray worker: a synthetic trial (100 MB of
1 MB arrays, 250 MB in between) and TeaNet trials (the quick budget with fewer epochs and samples, at
batch 64 and 256). Prints figures in MB; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trials import measure, teanet  # noqa: E402
from trials.measure import PeakMemory  # noqa: E402

_MB = 2**20


class OldPeakMemory:
    """The measure before "Trust the record" part 8: sampled RSS above RSS at the start."""

    def __init__(self, device: str, interval_s: float = 0.05, floor_mb: float = 0.0):
        # floor_mb: what PeakMemory takes from a resumed trial; the old measure had no such thing.
        self._process, self.interval_s = psutil.Process(os.getpid()), interval_s
        self._start = self._peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> OldPeakMemory:
        self._start = self._peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample_now()

    def count_cached(self, *data: object) -> int:
        return 0  # the old measure had none: what a trial found cached went uncounted

    def sample_now(self) -> None:
        self._peak = max(self._peak, self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    @property
    def peak_mb(self) -> float:
        self.sample_now()
        return (self._peak - self._start) / _MB


class CountingPeakMemory(PeakMemory):
    """PeakMemory whose trial declares its cached Lorentz data, as the one line in run_trial would."""

    current: CountingPeakMemory | None = None

    def __enter__(self) -> CountingPeakMemory:
        super().__enter__()
        CountingPeakMemory.current = self
        return self


def count_lorentz_when_fetched() -> None:
    """Until trials/teanet.py calls count_cached itself: count the splits right after the fetch."""
    if "count_cached" in inspect.getsource(teanet.run_trial):
        return
    fetch = teanet.cached_lorentz

    def counted(settings):
        splits = fetch(settings)
        if CountingPeakMemory.current is not None:
            CountingPeakMemory.current.count_cached(splits)
        return splits

    teanet.cached_lorentz = counted
    teanet.PeakMemory = CountingPeakMemory


def synthetic_trial(meter: type, megabytes: int, kept: list) -> float:
    """1 MB arrays, all alive at the peak, where the trial reads it; every other one is kept (results,
    caches), so the freed ones stay in glibc's heap."""
    with meter("cpu") as memory:
        chunks = [np.ones(_MB // 8) for _ in range(megabytes)]
        memory.sample_now()
        kept += chunks[1::2]
        del chunks
    return memory.peak_mb


def run_sequence(method: str, sequence: str, epochs: int, samples: int) -> list[float]:
    """Figures of (first, in between, third) in this fresh process."""
    if method == "resident":
        measure._MALLINFO2 = None
    meter = OldPeakMemory if method == "old" else PeakMemory
    if sequence == "synthetic":
        kept: list = []
        return [synthetic_trial(meter, megabytes, kept) for megabytes in (100, 250, 100)]
    from search_spaces import load_study

    if method == "old":
        teanet.PeakMemory = OldPeakMemory
    else:
        count_lorentz_when_fetched()
    study = load_study("teanet_masks")
    layer = {"train.epochs": epochs, "data.samples_per_class": samples}
    small = study.config_for("quick", layer)
    large = study.config_for("quick", layer, {"train.batch_size": 256})
    trials = (small, large, small) if sequence == "teanet_b64" else (large, small, large)
    return [teanet.run_trial(config)["peak_memory_mb"] for config in trials]


METHODS = ("old", "resident", "new")
SEQUENCES = {"synthetic": "100 MB, 250 MB, 100 MB", "teanet_b64": "quick b64, b256, b64",
             "teanet_b256": "quick b256, b64, b256"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=10, help="data.samples_per_class")
    parser.add_argument("--sequences", nargs="+", choices=list(SEQUENCES), default=list(SEQUENCES))
    parser.add_argument("--method", choices=METHODS, help="run one sequence here, print JSON")
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_sequence(args.method, args.sequences[0], args.epochs, args.samples)))
        return
    print(f"{'sequence':24} {'method':8} {'first':>8} {'between':>8} {'third':>8} {'third/first':>11}")
    for sequence in args.sequences:
        for method in METHODS:
            command = [sys.executable, __file__, "--method", method, "--sequences", sequence,
                       "--epochs", str(args.epochs), "--samples", str(args.samples)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            first, between, third = json.loads(output.splitlines()[-1])
            print(f"{SEQUENCES[sequence]:24} {method:8} {first:8.1f} {between:8.1f} {third:8.1f} "
                  f"{third / first:11.2f}", flush=True)


if __name__ == "__main__":
    main()
