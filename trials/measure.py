"""Where a trial runs and what it costs: device choice, precision, random state, memory released
between trials, peak memory, wall time (DESIGN.md, recording).

The device logic is kept apart from torch's CUDA calls so that the GPU paths are unit-tested here,
on machines without a GPU, by handing in a fake ``cuda`` module.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import gc
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import numpy as np
import psutil
import torch

_MB = 1024 * 1024


def select_device(requested: str, cuda: Any = torch.cuda) -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'. Asking for 'cuda' without one is an error, not
    a silent CPU run.

    'cuda' is the process's current device, cuda:0, and that is the GPU Ray assigned: Ray sets the
    worker's CUDA_VISIBLE_DEVICES to the assigned GPU's id (also for a fraction of one; Ray's
    ``NvidiaGPUAcceleratorManager.set_current_process_visible_accelerator_ids``), so the process sees
    that GPU alone, as device 0. (Unless RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES is set: then every
    GPU is visible and cuda:0 may be another trial's; the platform does not set it.)"""
    if requested not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device: expected auto, cpu or cuda, got {requested!r}")
    available = cuda.is_available()
    if requested == "cuda" and not available:
        raise RuntimeError("train.device=cuda, but no CUDA device is visible to this trial")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested


PRECISIONS = ("fp32", "bf16")


def autocast(precision: str, device: str) -> contextlib.AbstractContextManager:
    """The context of a training forward pass: nothing for fp32; for bf16 torch's autocast to bfloat16
    (on CPU too; no gradient scaling needed, bf16 has fp32's exponent range). Losses are computed
    outside it on float32 outputs: BCE refuses autocast on CUDA, and fp32 losses are autocast's own
    rule."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def random_state(device: str, cuda: Any = torch.cuda) -> dict[str, torch.Tensor]:
    """Torch's global random state (dropout draws from it), and the GPU's on a GPU: part of a trial's
    checkpoint, so that a resumed trial draws what the uninterrupted one would have."""
    state = {"torch": torch.get_rng_state()}
    if device == "cuda":
        state["cuda"] = cuda.get_rng_state()
    return state


def restore_random_state(state: Mapping[str, torch.Tensor], device: str, cuda: Any = torch.cuda) -> None:
    """Undo :func:`random_state`. A checkpoint made on a GPU and resumed on CPU restores the CPU's part."""
    torch.set_rng_state(state["torch"])
    if device == "cuda" and "cuda" in state:
        cuda.set_rng_state(state["cuda"])


def release_device_memory(device: str, cuda: Any = torch.cuda) -> None:
    """Collect garbage (models, optimisers, tensors a trial left in cycles) and, on a GPU, hand the
    caching allocator's free blocks back, so the next trial on a reused worker starts with the
    device's memory free (and its peak figure is its own)."""
    gc.collect()
    if device == "cuda":
        cuda.empty_cache()


@contextlib.contextmanager
def memory_released_after(device: str, cuda: Any = torch.cuda) -> Iterator[None]:
    """Release the trial's memory when the block ends, whether it returns or raises. A raised error's
    traceback keeps every frame's locals alive (the model, its tensors) for as long as the error is
    held, by Tune or a test: their locals are cleared first (the traceback's lines remain)."""
    try:
        yield
    except BaseException as error:
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        release_device_memory(device, cuda)


_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2``: uordblks is in use in the arenas, hblkhd in mmapped blocks."""

    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]


def _libc_function(name: str, restype: Any = ctypes.c_int) -> Callable[..., Any] | None:
    """A function of glibc's malloc; None where the C library has none (macOS, musl, Windows)."""
    try:
        function = getattr(ctypes.CDLL(None), name, None)  # the process's own symbols, libc's included
    except (OSError, TypeError):  # TypeError: Windows cannot load "None"
        return None
    if function is not None:
        function.restype = restype
    return function


_MALLINFO2 = _libc_function("mallinfo2", _MallInfo2)  # glibc ≥ 2.33
_MALLOC_TRIM = _libc_function("malloc_trim")


def release_freed_memory() -> bool:
    """Collect garbage, then hand the heap's free pages back to the OS (glibc ``malloc_trim``): memory an
    earlier trial freed then no longer hides this trial's allocations from the resident-memory measure
    (reused, it would not grow RSS). Where libc has no ``malloc_trim`` only the collection runs (False),
    and a trial after the first on a worker can undercount by what earlier ones left in the heap."""
    gc.collect()
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


def allocated_bytes() -> int | None:
    """Bytes glibc's malloc has handed out and not had back (in use in its arenas, plus blocks it
    mmapped): torch's and numpy's buffers, whatever the heap's history. None without ``mallinfo2``.
    It walks the free lists (~0.1 ms on a trained worker's heap): fine every 50 ms, not every 1 ms."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd


def private_resident_bytes(process: psutil.Process) -> int:
    """Resident memory less file-backed and shared pages (Linux), which are shared-library code a first
    trial pages in and mapped files: the OS can drop or share them. Elsewhere all of RSS."""
    info = process.memory_info()
    return info.rss - getattr(info, "shared", 0)


@functools.cache
def _warm_up_torch() -> None:
    """Pay torch's one-off costs once per process, before any baseline: the first optimiser imports
    torch._dynamo (23 MB allocated, 67 MB resident, measured), which only a worker's first trial would
    count."""
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight])
    (weight * 2).sum().backward()
    optimizer.step()


def nbytes_of(data: Any) -> int:
    """Bytes of the arrays and tensors in ``data`` (nested in dataclasses, mappings, lists and tuples),
    each buffer once."""
    buffers: dict[int, int] = {}
    _collect_buffers(data, buffers)
    return sum(buffers.values())


def _collect_buffers(data: Any, buffers: dict[int, int]) -> None:
    if isinstance(data, np.ndarray):
        buffers[data.__array_interface__["data"][0]] = data.nbytes
    elif isinstance(data, torch.Tensor):
        buffers[data.data_ptr()] = data.nbytes
    elif dataclasses.is_dataclass(data) and not isinstance(data, type):
        _collect_buffers([getattr(data, field.name) for field in dataclasses.fields(data)], buffers)
    elif isinstance(data, Mapping):
        _collect_buffers(list(data.values()), buffers)
    elif isinstance(data, (list, tuple)):
        for item in data:
            _collect_buffers(item, buffers)


class PeakMemory:
    """Peak memory of one trial, in MB: what it needs on top of an idle worker.

    On CPU: the most bytes the trial held allocated at once (tensors, arrays, buffers: glibc's
    ``mallinfo2``, sampled) above the worker's level at its start, plus the inputs it declares with
    :meth:`count_cached`. What the allocator keeps after a free is left out, so the figure does not depend
    on what the worker ran before; without glibc, growth of private resident memory stands in.
    On a GPU: ``torch.cuda.max_memory_allocated`` after resetting the peak at the start.
    A trial resumed from a checkpoint passes the peak of its earlier attempts as ``floor_mb``: the
    figure is the trial's peak over all its attempts.
    """

    def __init__(self, device: str, interval_s: float = 0.05, cuda: ModuleType | Any = torch.cuda,
                 floor_mb: float = 0.0):
        self.device = device
        self.floor_mb = floor_mb
        self.interval_s = interval_s
        self._cuda = cuda
        self._process = psutil.Process(os.getpid())
        self._lock = threading.Lock()
        self._start = self._peak = self._cached_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            self._cuda.reset_peak_memory_stats()
            return self
        _warm_up_torch()
        self._rebase()
        self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-memory")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_now()

    def count_cached(self, *data: Any) -> int:
        """Count inputs the trial takes from a per-process cache (or was handed) at their size in
        memory, whether this trial made them or found them made. Call it first in the block, as soon
        as they are at hand: what happened before in the block (making them) is left out, so that the
        trial that fills the cache and the trials that find it full report the same. No-op on a GPU,
        where the trial's copy of the data is on the device and counted there. Returns the bytes."""
        nbytes = nbytes_of(data)
        if self.device != "cuda":
            self._cached_bytes += nbytes
            self._rebase()
        return nbytes

    def sample_now(self) -> None:
        """Sample now, besides the thread's sample every ``interval_s``."""
        if self.device == "cuda":
            return
        with self._lock:  # a sample read before a rebase must not land after it
            self._peak = max(self._peak, self._level())

    def _level(self) -> int:
        allocated = allocated_bytes()
        return private_resident_bytes(self._process) if allocated is None else allocated

    def _rebase(self) -> None:
        release_freed_memory()
        with self._lock:
            self._start = self._peak = self._level()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_now()

    @property
    def peak_mb(self) -> float:
        """Peak so far (callable while the trial runs, for per-epoch reports)."""
        if self.device == "cuda":
            return max(self.floor_mb, self._cuda.max_memory_allocated() / _MB)
        self.sample_now()
        return max(self.floor_mb, (self._peak - self._start + self._cached_bytes) / _MB)


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
