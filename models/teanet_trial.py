"""One TeaNet trial: data → masks → joint training → selection on validation loss → test accuracy.

Follows the repo's protocol (MODELS.md A6-A7): a 1-D U-Net reconstructs masked spectra; the classifier
learns from the reconstructions together with unmasked originals; the U-Net's loss is
``γ·L_rec + (1 − γ)·L_CE`` (γ in the paper's convention, the reconstruction weight); two Adam optimisers,
each with its own StepLR; epochs alternate between the two networks (repo) or both step every batch
(paper's Algorithm 1, ``train.schedule=joint``). After each epoch the classifier is evaluated on the
unmasked validation spectra and kept when its validation loss improves; only the kept classifier is
tested.

Every epoch's report is a complete snapshot, so a trial the scheduler stops early still has its result:
``train_loss`` (mean classifier cross-entropy over the epoch), ``val_loss`` and ``epoch_val_accuracy``
(this epoch's classifier), ``recon_mse`` (U-Net on a fixed masked copy of the validation set), and the
kept classifier's ``val_accuracy`` (what a search optimises), ``accuracy`` (test; recorded, never used
for selection) and ``selected_epoch``, plus ``train_time_s``, ``peak_memory_mb``, ``trainable_params``,
``epochs`` (done so far) and ``samples_per_s`` (masked spectra per second of training).
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.config import complete_config
from models.measure import PeakMemory, Stopwatch, select_device
from models.registry import count_parameters, create_model
from models.teanet_config import (
    FIELDS,
    check_config,
    classifier_options,
    lorentz_settings,
    mask_scheme,
    unet_options,
)
from spectra.lorentz import LorentzSettings, generate_lorentz
from spectra.masks import mask_spectra
from spectra.splits import SpectraSplits

Report = Callable[[dict[str, float]], None]
_EVAL_CHUNK = 1024


class TrialDivergedError(RuntimeError):
    """The loss became NaN or infinite: the trial fails with this message instead of a silent number."""


@functools.lru_cache(maxsize=4)
def cached_lorentz(settings: LorentzSettings) -> SpectraSplits:
    """Generated data is made on the worker from its settings, once per process (DESIGN.md)."""
    return generate_lorentz(settings)


@dataclass
class _Data:
    masked: torch.Tensor  # [copies·N_train, L] masked training spectra
    masked_source: torch.Tensor  # index of each masked copy's original in x_train
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    val_masked: torch.Tensor  # one masked copy of each validation spectrum, for recon_mse


def _prepare_data(config: Mapping[str, Any], device: str) -> _Data:
    splits = cached_lorentz(lorentz_settings(config))
    scheme, fill = mask_scheme(config), config["mask.fill"]
    rng = np.random.default_rng([config["train.seed"], 1])
    masked, source = mask_spectra(splits.x_train, scheme, config["mask.copies"], fill, rng)
    # Masks of the validation copy depend on the data seed only: trials of one scheme compare.
    val_rng = np.random.default_rng([config["data.seed"], 2])
    val_masked, _ = mask_spectra(splits.x_val, scheme, 1, fill, val_rng)
    arrays = [masked, source, splits.x_train, splits.y_train, splits.x_val, splits.y_val,
              splits.x_test, splits.y_test, val_masked]
    return _Data(*(torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays))


def _recon_loss(kind: str, reconstruction: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """L_rec: per-sample sum of squared errors (repo's MyLossFunc) or L2 norm (paper), batch mean."""
    error = reconstruction - original
    if kind == "sse":
        return error.pow(2).sum(dim=1).mean()
    return error.norm(dim=1).mean()


def _batches(data: _Data, batch_size: int, generator: torch.Generator):
    """Pairs of (masked batch indices, original batch indices): both loaders have the same number
    of batches, the originals' batch being ceil(N_train / n_batches) and cycled (MODELS.md A6)."""
    n_masked, n_train = len(data.masked), len(data.x_train)
    n_batches = math.ceil(n_masked / batch_size)
    originals_per_batch = math.ceil(n_train / n_batches)
    masked_order = torch.randperm(n_masked, generator=generator).to(data.masked.device)
    repeats = math.ceil(n_batches * originals_per_batch / n_train)
    original_order = torch.cat([torch.randperm(n_train, generator=generator) for _ in range(repeats)])
    original_order = original_order.to(data.masked.device)
    for i in range(n_batches):
        yield (masked_order[i * batch_size:(i + 1) * batch_size],
               original_order[i * originals_per_batch:(i + 1) * originals_per_batch])


class _JointTrainer:
    """The two networks, their optimisers and schedules, and one epoch of each phase."""

    def __init__(self, config: Mapping[str, Any], unet: nn.Module, classifier: nn.Module):
        self.config = config
        self.gamma = config["loss.gamma"]
        self.unet, self.classifier = unet, classifier
        self.opt_unet = torch.optim.Adam(unet.parameters(), lr=config["train.lr_unet"])
        self.opt_classifier = torch.optim.Adam(classifier.parameters(), lr=config["train.lr_classifier"])
        step, decay = config["train.lr_step"], config["train.lr_decay"]
        self.sched_unet = torch.optim.lr_scheduler.StepLR(self.opt_unet, step, decay)
        self.sched_classifier = torch.optim.lr_scheduler.StepLR(self.opt_classifier, step, decay)

    def phase(self, epoch: int) -> str:
        if self.config["train.schedule"] == "joint":
            return "joint"
        return "unet" if epoch % 2 == 0 else "classifier"  # repo: even epochs U-Net, odd classifier

    def train_epoch(self, epoch: int, data: _Data, generator: torch.Generator) -> float:
        """One epoch; returns the mean classifier cross-entropy over its batches."""
        phase = self.phase(epoch)
        self.unet.train()
        self.classifier.train()
        # Weight gradients only for the networks this phase updates (the U-Net phase still
        # back-propagates through the classifier's activations).
        self.classifier.requires_grad_(phase != "unet")
        losses = []
        for step, (masked_idx, original_idx) in enumerate(_batches(data, self.config["train.batch_size"],
                                                                   generator)):
            losses.append(self._step(phase, data, masked_idx, original_idx, epoch, step))
        self.classifier.requires_grad_(True)
        if phase in ("unet", "joint"):
            self.sched_unet.step()
        if phase in ("classifier", "joint"):
            self.sched_classifier.step()
        return float(np.mean(losses))

    def _step(self, phase: str, data: _Data, masked_idx, original_idx, epoch: int, step: int) -> float:
        masked = data.masked[masked_idx]
        target = data.x_train[data.masked_source[masked_idx]]
        with torch.set_grad_enabled(phase != "classifier"):
            reconstruction = self.unet(masked)
        inputs = torch.cat([reconstruction, data.x_train[original_idx]])  # reconstructions first (repo)
        labels = torch.cat([data.y_train[data.masked_source[masked_idx]], data.y_train[original_idx]])
        # Cross-entropy on the classifier's output; with output=softmax this is the repo's CE on
        # probabilities (MODELS.md A5), kept for reproduction.
        ce = F.cross_entropy(self.classifier(inputs), labels)
        if phase == "classifier":
            _check_finite(ce, epoch, step, phase)
            self.opt_classifier.zero_grad(set_to_none=True)
            ce.backward()
            self.opt_classifier.step()
            return ce.item()
        joint = self.gamma * _recon_loss(self.config["loss.recon"], reconstruction, target) \
            + (1 - self.gamma) * ce
        _check_finite(joint, epoch, step, phase)
        if phase == "unet":
            self.opt_unet.zero_grad(set_to_none=True)
            joint.backward()
            self.opt_unet.step()
        else:  # joint: the U-Net follows L_G, the classifier L_CE, from one forward pass
            self._joint_step(joint, ce)
        return ce.item()

    def _joint_step(self, joint: torch.Tensor, ce: torch.Tensor) -> None:
        unet_params = [p for p in self.unet.parameters() if p.requires_grad]
        classifier_params = [p for p in self.classifier.parameters() if p.requires_grad]
        unet_grads = torch.autograd.grad(joint, unet_params, retain_graph=True)
        classifier_grads = torch.autograd.grad(ce, classifier_params)
        for params, grads in ((unet_params, unet_grads), (classifier_params, classifier_grads)):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad
        self.opt_unet.step()
        self.opt_classifier.step()


def _check_finite(loss: torch.Tensor, epoch: int, step: int, phase: str) -> None:
    if not torch.isfinite(loss):
        raise TrialDivergedError(
            f"loss became {loss.item()} at epoch {epoch + 1}, step {step} ({phase} phase): the trial "
            "diverged; lower the learning rates or check the data")


@torch.no_grad()
def evaluate(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(cross-entropy, accuracy) of the classifier in eval mode, on unmasked spectra."""
    classifier.eval()
    outputs = torch.cat([classifier(chunk) for chunk in x.split(_EVAL_CHUNK)])
    classifier.train()
    loss = F.cross_entropy(outputs, y).item()
    return loss, (outputs.argmax(dim=1) == y).float().mean().item()


@torch.no_grad()
def reconstruction_mse(unet: nn.Module, masked: torch.Tensor, original: torch.Tensor) -> float:
    """Mean squared error per point of the U-Net's reconstructions (eval mode)."""
    unet.eval()
    reconstruction = torch.cat([unet(chunk) for chunk in masked.split(_EVAL_CHUNK)])
    unet.train()
    return (reconstruction - original).pow(2).mean().item()


def run_trial(config: Mapping[str, Any], report: Report | None = None) -> dict[str, float]:
    """Train and evaluate one TeaNet configuration; returns the final metrics.

    ``config`` is a flat dict of the keys in :data:`models.teanet_config.FIELDS`; keys it leaves out take
    the paper's defaults. It is fully validated before any data is made or any training starts.
    ``report`` is called after every epoch with a complete snapshot of the metrics.
    """
    config = complete_config(FIELDS, config)
    check_config(config)
    device = select_device(config["train.device"])
    torch.manual_seed(config["train.seed"])
    with PeakMemory(device) as memory:
        data = _prepare_data(config, device)
        unet = create_model("teanet_unet", **unet_options(config)).to(device)
        classifier = create_model(config["model.classifier"], **classifier_options(config)).to(device)
        trainer = _JointTrainer(config, unet, classifier)
        metrics = _train(config, trainer, data, memory, report or (lambda metrics: None))
    return metrics


def _train(config: Mapping[str, Any], trainer: _JointTrainer, data: _Data, memory: PeakMemory,
           report: Report) -> dict[str, float]:
    generator = torch.Generator().manual_seed(config["train.seed"])
    training, total = Stopwatch(), Stopwatch()
    best_val_loss, selected = math.inf, {}
    trainable = count_parameters(trainer.unet) + count_parameters(trainer.classifier)
    metrics: dict[str, float] = {}
    for epoch in range(config["train.epochs"]):
        with total:
            with training:
                train_loss = trainer.train_epoch(epoch, data, generator)
            val_loss, val_accuracy = evaluate(trainer.classifier, data.x_val, data.y_val)
            recon_mse = reconstruction_mse(trainer.unet, data.val_masked, data.x_val)
        if val_loss < best_val_loss:  # repo: keep the classifier with the lowest validation CE
            best_val_loss = val_loss
            kept = copy.deepcopy(trainer.classifier)
            selected = {"val_accuracy": val_accuracy, "selected_epoch": epoch + 1,
                        "accuracy": evaluate(kept, data.x_test, data.y_test)[1]}
        metrics = {
            "train_loss": train_loss, "val_loss": val_loss, "epoch_val_accuracy": val_accuracy,
            "recon_mse": recon_mse, **selected,
            "train_time_s": total.seconds, "peak_memory_mb": memory.peak_mb,
            "trainable_params": trainable, "epochs": epoch + 1,
            "samples_per_s": (epoch + 1) * len(data.masked) / max(training.seconds, 1e-9),
        }
        report(metrics)
    return metrics
