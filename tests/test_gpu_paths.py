"""The GPU paths of a trial, tested here without a GPU (trials/measure.py, trials/trainable.py): the
device Ray assigns, memory released between trials on a reused worker (also when a trial raises), the
GPU's random state in checkpoints, the GPU peak carried over a resume, and bf16 mixed precision, which
also runs on CPU. A fake ``torch.cuda`` stands in for the device; tests that need a real one are
marked ``gpu`` and skipped without it."""

from __future__ import annotations

import math
import os
import weakref

import pytest
import torch

from search_spaces import load_study
from trials import hed, teanet
from trials.config import ConfigError, parse_assignment
from trials.hed_config import FIELDS as HED_FIELDS
from trials.measure import (
    PeakMemory,
    autocast,
    memory_released_after,
    random_state,
    restore_random_state,
    select_device,
)
from trials.teanet_config import FIELDS as TEANET_FIELDS
from trials.trainable import run_task

MB = 2**20
STUDIES = {"hed": (hed.run_trial, load_study("hed_architectures")),
           "teanet": (teanet.run_trial, load_study("teanet_masks"))}


class FakeCuda:
    """The part of ``torch.cuda`` a trial's device layer uses, recording calls."""

    def __init__(self, available: bool = True, peak_bytes: int = 0):
        self.available, self.peak_bytes = available, peak_bytes
        self.emptied = 0
        self.rng = torch.tensor([1, 2, 3], dtype=torch.uint8)

    def is_available(self) -> bool:
        return self.available

    def empty_cache(self) -> None:
        self.emptied += 1

    def reset_peak_memory_stats(self) -> None:
        pass

    def max_memory_allocated(self) -> int:
        return self.peak_bytes

    def get_rng_state(self) -> torch.Tensor:
        return self.rng.clone()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.rng = state.clone()


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


# --- the device Ray assigns ----------------------------------------------------------------------

def test_ray_shows_a_trial_its_assigned_gpu_as_the_process_s_only_device(monkeypatch):
    """Ray narrows CUDA_VISIBLE_DEVICES to the GPU it assigned (here GPU 3 of the node), so torch's
    device 0, what select_device's 'cuda' means, is that GPU."""
    from ray._private.accelerators.nvidia_gpu import NvidiaGPUAcceleratorManager

    monkeypatch.delenv("RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    NvidiaGPUAcceleratorManager.set_current_process_visible_accelerator_ids(["3"])
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    device = select_device("auto", cuda=FakeCuda(available=True))
    assert device == "cuda" and torch.device(device).index is None  # the current device: 0 of one


# --- memory released between trials --------------------------------------------------------------

class Model:
    """Stands in for what a trial holds on the device."""


def trial_holding(held: list, fail: bool):
    def trial(config, report):
        model = Model()  # a local of the trial's frame only
        held.append(weakref.ref(model))
        report({"epochs": 1})
        if fail:
            raise RuntimeError("the trial failed")
        return {"epochs": 1}
    return trial


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_a_trial_s_gpu_memory_is_released_when_it_ends(fail):
    cuda, held = FakeCuda(), []
    trial = trial_holding(held, fail)
    if fail:
        with pytest.raises(RuntimeError, match="the trial failed") as error:
            run_task(trial, {}, lambda m, state=None: None, device="cuda", cuda=cuda)
        # The error (held here, as Tune holds it) no longer keeps the trial's locals alive.
        assert error.value.__traceback__ is not None
    else:
        run_task(trial, {}, lambda m, state=None: None, device="cuda", cuda=cuda)
    assert cuda.emptied == 1
    assert held[0]() is None, "the trial's model is still referenced after the trial"


def test_without_clearing_frames_a_raised_error_would_keep_the_model():
    """Proof that the test above can fail: a plain try/finally leaves the model alive in the error."""
    held = []
    with pytest.raises(RuntimeError) as error:
        trial_holding(held, fail=True)({}, lambda m: None)
    assert held[0]() is not None
    del error


def test_cpu_trials_collect_garbage_but_leave_cuda_alone():
    cuda = FakeCuda()
    with memory_released_after("cpu", cuda=cuda):
        pass
    assert cuda.emptied == 0


# --- checkpoints on a GPU ------------------------------------------------------------------------

def test_a_gpu_trial_s_random_state_includes_the_gpu_s_and_is_restored():
    cuda = FakeCuda()
    state = random_state("cuda", cuda=cuda)
    assert torch.equal(state["cuda"], torch.tensor([1, 2, 3], dtype=torch.uint8))
    cuda.rng = torch.tensor([9], dtype=torch.uint8)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    restore_random_state({**state, "torch": torch.get_rng_state()}, "cuda", cuda=cuda)
    assert torch.equal(cuda.rng, torch.tensor([1, 2, 3], dtype=torch.uint8))
    assert torch.equal(torch.rand(3), expected)
    assert "cuda" not in random_state("cpu", cuda=cuda)


def test_a_resumed_gpu_trial_s_peak_is_at_least_its_earlier_attempts():
    cuda = FakeCuda(peak_bytes=100 * MB)
    with PeakMemory("cuda", cuda=cuda, floor_mb=250.0) as memory:
        assert memory.peak_mb == 250.0
        cuda.peak_bytes = 300 * MB
        assert memory.peak_mb == 300.0


# --- mixed precision -----------------------------------------------------------------------------

def test_autocast_runs_forward_passes_in_bf16_only_when_asked():
    layer = torch.nn.Linear(4, 2)
    with autocast("bf16", "cpu"):
        assert layer(torch.ones(1, 4)).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert layer(torch.ones(1, 4)).dtype == torch.float32
    with pytest.raises(ValueError, match="expected one of fp32, bf16, got 'fp16'"):
        autocast("fp16", "cpu")


@pytest.mark.parametrize("fields", [HED_FIELDS, TEANET_FIELDS], ids=["hed", "teanet"])
def test_precision_is_a_config_key_set_from_the_command_line(fields):
    assert fields["train.precision"].default == "fp32"
    assert parse_assignment("train.precision=bf16", fields) == ("train.precision", "bf16")
    with pytest.raises(ConfigError, match="train.precision.*one of fp32, bf16"):
        parse_assignment("train.precision=fp16", fields)


@pytest.mark.parametrize("task", sorted(STUDIES))
def test_a_bf16_smoke_trial_runs_on_cpu_and_records_its_precision(task):
    run_trial, study = STUDIES[task]
    config = study.config_for("smoke", {"train.precision": "bf16"})
    assert config["train.precision"] == "bf16"  # the config is what the driver logs as params
    bf16 = run_trial(config)
    fp32 = run_trial(study.config_for("smoke"))
    assert all(math.isfinite(value) for value in bf16.values() if isinstance(value, float))
    assert bf16["train_loss"] != fp32["train_loss"], "bf16 computed nothing in bf16"


# --- a real GPU ----------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; torch sees none here")
@pytest.mark.parametrize("task", sorted(STUDIES))
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_on_a_real_gpu_a_trial_leaves_no_memory_allocated(task, precision):
    run_trial, study = STUDIES[task]
    before = torch.cuda.memory_allocated()
    config = study.config_for("smoke", {"train.device": "cuda", "train.precision": precision})
    metrics = run_task(run_trial, config, lambda m, state=None: None, device="cuda")
    assert metrics["peak_memory_mb"] > 0
    assert torch.cuda.memory_allocated() <= before
    assert torch.cuda.memory_reserved() <= torch.cuda.memory_allocated() + MB  # the cache handed back
