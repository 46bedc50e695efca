"""Where a trial runs and what it costs: device choice, peak memory, wall time (DESIGN.md, recording).

The device logic is kept apart from torch's CUDA calls so that the GPU paths are unit-tested here,
on machines without a GPU, by handing in a fake ``cuda`` module.
"""

from __future__ import annotations

import os
import threading
import time
from types import ModuleType
from typing import Any

import psutil
import torch

_MB = 1024 * 1024


def select_device(requested: str, cuda: Any = torch.cuda) -> str:
    """'auto' → 'cuda' when a GPU is visible (Ray hands a trial its fractional GPU via
    CUDA_VISIBLE_DEVICES), else 'cpu'. Asking for 'cuda' without one is an error, not a silent CPU run."""
    if requested not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device: expected auto, cpu or cuda, got {requested!r}")
    available = cuda.is_available()
    if requested == "cuda" and not available:
        raise RuntimeError("train.device=cuda, but no CUDA device is visible to this trial")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested


class PeakMemory:
    """Peak memory of one trial, in MB.

    On a GPU: ``max_memory_allocated`` after resetting the peak at the start. On a CPU: the peak
    resident memory of this process during the trial minus its resident memory at the start, sampled
    by a thread (``ru_maxrss`` never goes down in a reused Ray actor, so it cannot serve).
    """

    def __init__(self, device: str, interval_s: float = 0.05, cuda: ModuleType | Any = torch.cuda):
        self.device = device
        self.interval_s = interval_s
        self._cuda = cuda
        self._process = psutil.Process(os.getpid())
        self._start_rss = 0
        self._peak_rss = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            self._cuda.reset_peak_memory_stats()
        else:
            self._start_rss = self._peak_rss = self._process.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-memory")
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_now()

    def sample_now(self) -> None:
        if self.device != "cuda":
            self._peak_rss = max(self._peak_rss, self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    @property
    def peak_mb(self) -> float:
        """Peak so far (callable while the trial runs, for per-epoch reports)."""
        if self.device == "cuda":
            return self._cuda.max_memory_allocated() / _MB
        self.sample_now()
        return (self._peak_rss - self._start_rss) / _MB


class Stopwatch:
    """Accumulates the wall time of the timed sections (training, not data generation)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def __enter__(self) -> Stopwatch:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds += time.perf_counter() - self._started
        self._started = None
