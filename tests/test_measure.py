"""Device choice, peak memory and wall time of a trial (models/measure.py). The GPU paths are tested with
a fake ``torch.cuda``; one real-GPU test runs only where a GPU is visible."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models import measure
from models.measure import PeakMemory, Stopwatch, select_device

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
    from models.teanet_trial import run_trial
    from search_spaces import load_study

    config = load_study("teanet_masks").config_for("smoke", {"train.device": "cuda"})
    metrics = run_trial(config)
    assert metrics["peak_memory_mb"] > 0
