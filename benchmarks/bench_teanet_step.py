"""TeaNet training step at the paper's sizes and at the study's budgets: ms per step, samples/s,
FLOPs per masked sample (torch.utils.flop_counter) and the achieved GFLOP/s beside this machine's
matmul peak, all measured in one run.

    python benchmarks/bench_teanet_step.py [--budgets paper quick smoke] [--steps 3] [--threads N]

A step is one batch of the U-Net phase (U-Net forward and backward through the classifier) or of the
classifier phase (U-Net forward without gradients, classifier forward and backward), as in the repo's
alternating schedule (MODELS.md A6). Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.registry import create_model  # noqa: E402
from search_spaces.teanet_masks import STUDY  # noqa: E402
from trials.config import complete_config  # noqa: E402
from trials.teanet import _batches, _Data, _JointTrainer  # noqa: E402
from trials.teanet_config import FIELDS, classifier_options, unet_options  # noqa: E402


def matmul_peak_gflops(size: int = 4096, repeats: int = 5) -> float:
    """Best GFLOP/s of a large float32 matmul on this CPU with the current thread count."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def fake_data(config: dict) -> _Data:
    """Random tensors of the shapes a trial of this config trains on (the data's values do not
    change the cost)."""
    n_train = config["data.classes"] * round(0.6 * config["data.samples_per_class"])
    n_masked = n_train * config["mask.copies"]
    length, classes = config["data.length"], config["data.classes"]
    x_train = torch.rand(n_train, length)
    y_train = torch.randint(0, classes, (n_train,))
    return _Data(torch.rand(n_masked, length), torch.arange(n_masked) % n_train, x_train, y_train,
                 x_train[:8], y_train[:8], x_train[:8], y_train[:8], x_train[:8])


def measure(config: dict, phase_epoch: int, steps: int) -> tuple[float, int, float]:
    """(seconds per step, masked samples per step, FLOPs per step) of one phase."""
    torch.manual_seed(0)
    unet = create_model("teanet_unet", **unet_options(config))
    classifier = create_model(config["model.classifier"], **classifier_options(config))
    trainer = _JointTrainer(config, unet, classifier)
    data = fake_data(config)
    phase = trainer.phase(phase_epoch)
    classifier.requires_grad_(phase != "unet")
    batches = _batches(data, config["train.batch_size"], torch.Generator().manual_seed(0))
    masked_idx, original_idx = next(batches)
    trainer._step(phase, data, masked_idx, original_idx, 0, 0)  # warm-up
    with FlopCounterMode(display=False) as counter:
        trainer._step(phase, data, masked_idx, original_idx, 0, 0)
    start = time.perf_counter()
    for step in range(steps):
        trainer._step(phase, data, masked_idx, original_idx, 0, step)
    return (time.perf_counter() - start) / steps, len(masked_idx), counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budgets", nargs="+", default=["paper", "quick", "smoke"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak_gflops()
    print(f"torch {torch.__version__}, {args.threads} threads; float32 matmul peak {peak:.1f} GFLOP/s "
          "(before the steps)\n")
    header = f"{'budget':<7} {'phase':<11} {'batch':>5} {'ms/step':>9} {'samples/s':>10} " \
             f"{'GFLOP/sample':>13} {'GFLOP/s':>8} {'% peak':>7}"
    print(header)
    for budget in args.budgets:
        config = complete_config(FIELDS, STUDY.budgets[budget].config, {"train.schedule": "alternating"})
        steps = 1 if budget == "paper" else args.steps
        for phase_epoch, phase in ((0, "unet"), (1, "classifier")):
            seconds, batch, flops = measure(config, phase_epoch, steps)
            print(f"{budget:<7} {phase:<11} {batch:>5} {seconds * 1e3:>9.1f} {batch / seconds:>10.1f} "
                  f"{flops / batch / 1e9:>13.3f} {flops / seconds / 1e9:>8.1f} "
                  f"{100 * flops / seconds / 1e9 / peak:>6.0f}%")
    # The clock of a shared CPU moves: a peak measured after the steps too keeps "% peak" honest.
    print(f"\nmatmul peak after the steps: {matmul_peak_gflops():.1f} GFLOP/s")


if __name__ == "__main__":
    main()
