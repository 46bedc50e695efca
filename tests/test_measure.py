"""Device choice, peak memory and wall time of a trial (trials/measure.py). The GPU paths are tested with
a fake ``torch.cuda``; one real-GPU test runs only where a GPU is visible."""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from trials import measure
from trials.measure import PeakMemory, Stopwatch, select_device

MB = 2**20


class FakeCuda:
    """The part of ``torch.cuda`` that measure.py uses, recording calls."""

    def __init__(self, available: bool = True, peak_bytes: int = 0):
        self.available = available
        self.peak_bytes = peak_bytes
        self.resets = 0

    def is_available(self) -> bool:
        return self.available

    def reset_peak_memory_stats(self) -> None:
        self.resets += 1

    def max_memory_allocated(self) -> int:
        return self.peak_bytes


def touched_array(megabytes: int) -> np.ndarray:
    """An array whose pages are all written, so they are resident (np.zeros may not be)."""
    return np.ones(megabytes * MB // 8)


def heap_workload(memory: PeakMemory, megabytes: int, ones: Callable[[int], Any] = np.ones) -> list[Any]:
    """A trial's worth of 1 MB arrays (or tensors), all alive at its peak, where it reads the peak (as
    per-epoch reports do); then it frees every other one. Returns the rest, which the worker keeps
    (results, caches): between them, the freed chunks stay in glibc's heap, resident, where a later
    trial reuses them without growing RSS."""
    chunks = [ones(MB // 8) for _ in range(megabytes)]
    memory.sample_now()
    return chunks[1::2]


def raise_mmap_threshold() -> None:
    """glibc serves big blocks by mmap and, once one is freed, raises the threshold to its size: 1 MB
    chunks then come from its heap, as in any worker after its first large free."""
    touched_array(16)  # made and dropped at once


def first_and_third(workloads: tuple[int, int, int],
                    ones: Callable[[int], Any] = np.ones) -> tuple[float, float]:
    """Peak MB of the first and third of three workloads run one after the other in this process."""
    raise_mmap_threshold()
    figures, kept = [], []
    for megabytes in workloads:
        with PeakMemory("cpu") as memory:
            kept += heap_workload(memory, megabytes, ones)
        figures.append(memory.peak_mb)
    return figures[0], figures[2]


needs_mallinfo2 = pytest.mark.skipif(measure._MALLINFO2 is None, reason="glibc ≥ 2.33 only: no mallinfo2")
needs_malloc_trim = pytest.mark.skipif(measure._MALLOC_TRIM is None, reason="glibc only: no malloc_trim")


@pytest.fixture
def resident_measure(monkeypatch):
    """The stand-in measure of libcs without mallinfo2: private resident memory."""
    monkeypatch.setattr(measure, "_MALLINFO2", None)


# --- select_device -------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "available", "device"), [
    ("auto", True, "cuda"), ("auto", False, "cpu"),
    ("cpu", True, "cpu"), ("cpu", False, "cpu"),
    ("cuda", True, "cuda"),
])
def test_select_device(requested, available, device):
    assert select_device(requested, cuda=FakeCuda(available)) == device


def test_cuda_requested_without_a_gpu_is_an_error_not_a_cpu_run():
    with pytest.raises(RuntimeError, match="train.device=cuda.*no CUDA device"):
        select_device("cuda", cuda=FakeCuda(available=False))


def test_unknown_device_is_rejected():
    with pytest.raises(ValueError, match="expected auto, cpu or cuda, got 'gpu'"):
        select_device("gpu", cuda=FakeCuda())


# --- PeakMemory ----------------------------------------------------------------------------------

def test_cpu_peak_counts_an_allocation_made_inside_the_block():
    with PeakMemory("cpu") as memory:
        block = touched_array(200)
    assert memory.peak_mb >= 150
    del block


def test_cpu_peak_does_not_count_memory_allocated_before_the_block():
    before = touched_array(200)
    with PeakMemory("cpu") as memory:
        small = touched_array(1)
    assert memory.peak_mb < 50
    del before, small


def test_cpu_peak_is_readable_while_the_block_runs():
    with PeakMemory("cpu") as memory:
        assert memory.peak_mb < 50
        block = touched_array(200)
        assert memory.peak_mb >= 150  # reading samples now: per-epoch reports see the peak so far
    del block


@needs_mallinfo2
@pytest.mark.parametrize("ones", [np.ones, functools.partial(torch.ones, dtype=torch.float64)],
                         ids=["numpy", "torch"])
def test_cpu_peak_is_the_same_whether_the_trial_runs_first_or_third_on_a_worker(ones):
    first, third = first_and_third((100, 250, 100), ones)
    assert first == pytest.approx(100, rel=0.1)  # what the workload holds at its peak
    assert third == pytest.approx(first, rel=0.1)


@needs_malloc_trim
def test_resident_stand_in_is_the_same_first_or_third_once_freed_heap_is_returned(resident_measure):
    first, third = first_and_third((100, 250, 100))
    assert first == pytest.approx(100, rel=0.1)
    assert third == pytest.approx(first, rel=0.1)


@needs_malloc_trim
def test_without_returning_freed_heap_resident_memory_undercounts_the_third(resident_measure, monkeypatch):
    # The old measure (RSS growth from wherever the heap stood): the third workload reuses the 125 MB the
    # second one freed, so RSS does not grow (measured: 0.0 MB of 100). The first may undercount too, by
    # what earlier tests left in this process's heap: it is no trial's first on a fresh worker.
    monkeypatch.setattr(measure, "_MALLOC_TRIM", None)
    first, third = first_and_third((100, 250, 100))
    assert third < 0.5 * 100


def test_sampler_catches_a_peak_the_trial_never_reads():
    with PeakMemory("cpu", interval_s=0.01) as memory:
        block = touched_array(200)
        time.sleep(0.3)  # some samples long, then freed: as activations are after a backward
        del block
    assert memory.peak_mb >= 190


@functools.lru_cache(maxsize=2)
def cached_dataset(seed: int) -> np.ndarray:
    """40 MB of float32 spectra, made once per process through 80 MB of float64 temporaries."""
    return np.random.default_rng(seed).standard_normal(10 * MB).astype(np.float32)


def dataset_trial(seed: int, count_cached: bool = True) -> float:
    with PeakMemory("cpu") as memory:
        data = cached_dataset(seed)
        if count_cached:
            memory.count_cached(data)
        scaled = data * 2  # the trial's own 40 MB
        memory.sample_now()
        del scaled
    return memory.peak_mb


@pytest.mark.parametrize("count_cached", [True, False])
def test_cached_data_counts_the_same_for_the_trial_that_makes_it_and_one_that_finds_it(count_cached):
    cached_dataset.cache_clear()
    first, _, third = (dataset_trial(seed, count_cached) for seed in (0, 1, 0))
    assert cached_dataset.cache_info().hits == 1  # the third found its data made
    if count_cached:
        assert first == pytest.approx(80, rel=0.1)  # the data and the trial's own copy
        assert third == pytest.approx(first, rel=0.1)
    else:  # undeclared, the trial that makes the data counts it (and its temporaries, if a sample lands
        # on them: 120 MB), the one that finds it does not
        assert first >= 0.9 * 80 and third == pytest.approx(40, rel=0.1)


@dataclass
class Splits:
    x: np.ndarray
    y: torch.Tensor
    name: str


def test_count_cached_counts_arrays_and_tensors_once_each():
    x, y = np.ones(1000, dtype=np.float32), torch.ones(500, dtype=torch.int64)
    assert measure.nbytes_of(Splits(x, y, "train")) == 8000
    assert measure.nbytes_of([x, {"again": x, "view": torch.from_numpy(x)}]) == 4000
    assert measure.nbytes_of((3, "text", None)) == 0


def test_count_cached_leaves_the_gpu_figure_to_the_device():
    cuda = FakeCuda(peak_bytes=10 * MB)
    with PeakMemory("cuda", cuda=cuda) as memory:
        assert memory.count_cached(np.ones(MB // 8)) == MB
    assert memory.peak_mb == 10.0


def test_cuda_peak_resets_on_enter_and_reads_max_memory_allocated():
    cuda = FakeCuda(peak_bytes=300 * MB)
    memory = PeakMemory("cuda", cuda=cuda)
    assert cuda.resets == 0
    with memory:
        assert cuda.resets == 1
    assert memory.peak_mb == 300.0
    cuda.peak_bytes = 3 * MB // 2
    assert memory.peak_mb == 1.5


# --- Stopwatch -----------------------------------------------------------------------------------

def test_stopwatch_adds_up_its_sections_only(monkeypatch):
    clock = iter([10.0, 12.5, 100.0, 101.0])
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    watch = Stopwatch()
    with watch:  # 10.0 → 12.5
        pass
    # time between sections (12.5 → 100.0) is not counted
    with watch:  # 100.0 → 101.0
        pass
    assert watch.seconds == 3.5


# --- a real GPU ----------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch sees none here")
def test_smoke_trial_on_a_real_gpu_reports_its_peak_memory():
    from search_spaces import load_study
    from trials.teanet import run_trial

    config = load_study("teanet_masks").config_for("smoke", {"train.device": "cuda"})
    metrics = run_trial(config)
    assert metrics["peak_memory_mb"] > 0
