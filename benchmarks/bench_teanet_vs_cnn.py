"""TeaNet's training step against CNN_Full's on the same data (issue 9, Speed): batch 256 of length
1024, ms per step and samples per second, at the paper's sizes (and optionally a study budget's).

    python benchmarks/bench_teanet_vs_cnn.py [--budget paper] [--steps 3] [--threads 2]

TeaNet's step is one batch of each phase of the alternating schedule (MODELS.md A6): the U-Net phase
(U-Net forward and backward through the classifier, on 256 masked spectra + the cycled originals) and
the classifier phase (U-Net forward without gradients, classifier forward and backward); their mean is
TeaNet's step. CNN_Full's step is the same classifier's forward and backward on 256 original spectra
(trials/classifier_only.py). The three are timed in interleaved rounds (medians), so a shared machine's
load weighs on all alike. Prints figures and the load of the machine; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.registry import create_model  # noqa: E402
from search_spaces.teanet_baselines import STUDY  # noqa: E402
from trials.teanet import _batches, _Data, _JointTrainer  # noqa: E402
from trials.teanet_config import classifier_options, unet_options  # noqa: E402

BATCH, LENGTH, CLASSES, COPIES = 256, 1024, 100, 10


def _data(n_train: int, length: int, classes: int) -> _Data:
    """Random spectra of the shapes TeaNet trains on: n_train originals, 10 masked copies of each."""
    x = torch.rand(n_train, length)
    y = torch.arange(n_train) % classes
    masked = x.repeat_interleave(COPIES, dim=0).clone()
    masked[:, length // 3: length // 2] = -1.0
    source = torch.arange(n_train).repeat_interleave(COPIES)
    return _Data(masked, source, x, y, x[:8], y[:8], x[:8], y[:8], masked[:8])


def _timed(steps: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each step, measured in interleaved rounds (one of each per round) so that
    the load of a shared machine weighs on all of them alike; one warm-up round first."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(rounds + 1):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def teanet_steps(config: dict, data: _Data) -> dict:
    """One U-Net-phase and one classifier-phase step (batch 256 masked + the cycled originals)."""
    unet = create_model("teanet_unet", **unet_options(config))
    classifier = create_model(config["model.classifier"], **classifier_options(config))
    trainer = _JointTrainer(config, unet, classifier)
    masked_idx, original_idx = next(_batches(data, BATCH, torch.Generator().manual_seed(0)))

    def phase_step(phase: str):
        def step() -> None:
            classifier.requires_grad_(phase != "unet")
            trainer._step(phase, data, masked_idx, original_idx, 0, 0)
        return step

    return {"TeaNet U-Net phase": phase_step("unet"), "TeaNet classifier phase": phase_step("classifier")}


def cnn_step(config: dict, data: _Data):
    """CNN_Full: the same classifier's forward and backward on 256 original spectra."""
    classifier = create_model(config["model.classifier"], **classifier_options(config))
    optimiser = torch.optim.Adam(classifier.parameters(), lr=1e-4)
    x, y = data.x_train[:BATCH], data.y_train[:BATCH]

    def step() -> None:
        loss = F.cross_entropy(classifier(x), y)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="paper", help="model sizes of this teanet_baselines budget")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = STUDY.config_for(args.budget, {"data.length": LENGTH, "data.classes": CLASSES,
                                            "model.classifier_output": "logits"})
    n_train = 12 * CLASSES  # the synthetic set's training split: 12 of 20 per class
    data = _data(n_train, LENGTH, CLASSES)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch threads "
          f"{args.threads}; budget {args.budget} model sizes, batch {BATCH}, length {LENGTH}")
    seconds = _timed({**teanet_steps(config, data), "CNN_Full": cnn_step(config, data)}, args.steps)
    originals = len(next(_batches(data, BATCH, torch.Generator().manual_seed(0)))[1])
    unet_s, classifier_s, cnn_s = seconds.values()
    teanet_s = (unet_s + classifier_s) / 2
    rows = [("TeaNet U-Net phase", unet_s, BATCH + originals),
            ("TeaNet classifier phase", classifier_s, BATCH + originals),
            ("TeaNet (mean of the phases)", teanet_s, BATCH + originals), ("CNN_Full", cnn_s, BATCH)]
    print(f"{'step':<30}{'ms/step':>10}{'samples/s':>12}")
    for name, spent, samples in rows:
        print(f"{name:<30}{1000 * spent:>10.1f}{samples / spent:>12.1f}")
    print(f"TeaNet / CNN_Full time per step: {teanet_s / cnn_s:.1f}×; load average after: "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
