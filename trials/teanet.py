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
``epochs`` (done so far), ``planned_epochs``, ``progress`` (their ratio: what the scheduler compares)
and ``samples_per_s`` (masked spectra per second of training). Trials checkpoint and resume as
trials.contract says (:class:`_Run` holds what an epoch carries to the next).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.registry import count_parameters, create_model
from spectra.lorentz import LorentzSettings, generate_lorentz
from spectra.masks import mask_spectra
from spectra.splits import SpectraSplits
from trials import trial_data
from trials.config import complete_config
from trials.contract import epoch_progress, resume_epochs, trial_state
from trials.figures import validation_reconstructions
from trials.measure import (
    PeakMemory,
    Stopwatch,
    autocast,
    random_state,
    restore_random_state,
    select_device,
)
from trials.repeats import RepeatResult, predictions_csv, run_repeats
from trials.teanet_config import (
    FIELDS,
    check_config,
    classifier_options,
    lorentz_settings,
    mask_scheme,
    separate_unet_epochs,
    unet_options,
)
from trials.trial_data import uses_files

Report = Callable[..., None]  # report(metrics) or, with report_state, report(metrics, state=...)
_EVAL_CHUNK = 1024
_TRAINER_PARTS = ("unet", "classifier", "opt_unet", "opt_classifier", "sched_unet", "sched_classifier")


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


def _prepare_data(config: Mapping[str, Any], splits: SpectraSplits, device: str) -> _Data:
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
    return batch_pairs(len(data.masked), len(data.x_train), batch_size, generator, data.masked.device)


def batch_pairs(n_masked: int, n_train: int, batch_size: int, generator: torch.Generator, device: Any):
    """Pairs of (masked batch indices, original batch indices): both loaders have the same number
    of batches, the originals' batch being ceil(N_train / n_batches) and cycled (MODELS.md A6)."""
    n_batches = math.ceil(n_masked / batch_size)
    originals_per_batch = math.ceil(n_train / n_batches)
    masked_order = torch.randperm(n_masked, generator=generator).to(device)
    repeats = math.ceil(n_batches * originals_per_batch / n_train)
    original_order = torch.cat([torch.randperm(n_train, generator=generator) for _ in range(repeats)])
    original_order = original_order.to(device)
    for i in range(n_batches):
        yield (masked_order[i * batch_size:(i + 1) * batch_size],
               original_order[i * originals_per_batch:(i + 1) * originals_per_batch])


class _JointTrainer:
    """The two networks, their optimisers and schedules, and one epoch of each phase."""

    def __init__(self, config: Mapping[str, Any], unet: nn.Module, classifier: nn.Module,
                 device: str = "cpu"):
        self.config = config
        self.gamma = config["loss.gamma"]
        self.precision = functools.partial(autocast, config["train.precision"], device)
        self.unet, self.classifier = unet, classifier
        self.opt_unet = torch.optim.Adam(unet.parameters(), lr=config["train.lr_unet"])
        self.opt_classifier = torch.optim.Adam(classifier.parameters(), lr=config["train.lr_classifier"])
        step, decay = config["train.lr_step"], config["train.lr_decay"]
        self.sched_unet = torch.optim.lr_scheduler.StepLR(self.opt_unet, step, decay)
        self.sched_classifier = torch.optim.lr_scheduler.StepLR(self.opt_classifier, step, decay)

    def state_dict(self) -> dict[str, Any]:
        """Both networks, optimisers and LR schedules (live tensors: save or copy at once)."""
        return {name: getattr(self, name).state_dict() for name in _TRAINER_PARTS}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for name in _TRAINER_PARTS:
            getattr(self, name).load_state_dict(state[name])

    def phase(self, epoch: int) -> str:
        if self.config["train.training"] == "separate":  # Table 5: U-Net alone first, then frozen
            return "unet_alone" if epoch < separate_unet_epochs(self.config) else "classifier"
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
        self.classifier.requires_grad_(phase not in ("unet", "unet_alone"))
        losses = []
        for step, (masked_idx, original_idx) in enumerate(_batches(data, self.config["train.batch_size"],
                                                                   generator)):
            losses.append(self._step(phase, data, masked_idx, original_idx, epoch, step))
        self.classifier.requires_grad_(True)
        if phase in ("unet", "unet_alone", "joint"):
            self.sched_unet.step()
        if phase in ("classifier", "joint"):
            self.sched_classifier.step()
        return float(np.mean(losses))

    def _step(self, phase: str, data: _Data, masked_idx, original_idx, epoch: int, step: int) -> float:
        masked = data.masked[masked_idx]
        target = data.x_train[data.masked_source[masked_idx]]
        with self.precision():  # forward passes in bf16 under autocast, or fp32; the losses in fp32
            with torch.set_grad_enabled(phase != "classifier"):
                reconstruction = self.unet(masked)
            inputs = torch.cat([reconstruction, data.x_train[original_idx]])  # reconstructions first (repo)
            outputs = self.classifier(inputs)
        reconstruction, outputs = reconstruction.float(), outputs.float()
        labels = torch.cat([data.y_train[data.masked_source[masked_idx]], data.y_train[original_idx]])
        # Cross-entropy on the classifier's output; with output=softmax this is the repo's CE on
        # probabilities (MODELS.md A5), kept for reproduction.
        ce = F.cross_entropy(outputs, labels)
        if phase == "classifier":
            _check_finite(ce, epoch, step, phase)
            self.opt_classifier.zero_grad(set_to_none=True)
            ce.backward()
            self.opt_classifier.step()
            return ce.item()
        recon = _recon_loss(self.config["loss.recon"], reconstruction, target)
        # Separate training's first stage is the reconstruction loss alone (no classification loss).
        joint = recon if phase == "unet_alone" else self.gamma * recon + (1 - self.gamma) * ce
        _check_finite(joint, epoch, step, phase)
        if phase in ("unet", "unet_alone"):
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
def predict(classifier: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Predicted class of each spectrum (eval mode)."""
    classifier.eval()
    outputs = torch.cat([classifier(chunk) for chunk in x.split(_EVAL_CHUNK)])
    classifier.train()
    return outputs.argmax(dim=1).cpu().numpy()


@torch.no_grad()
def reconstruction_mse(unet: nn.Module, masked: torch.Tensor, original: torch.Tensor) -> float:
    """Mean squared error per point of the U-Net's reconstructions (eval mode)."""
    unet.eval()
    reconstruction = torch.cat([unet(chunk) for chunk in masked.split(_EVAL_CHUNK)])
    unet.train()
    return (reconstruction - original).pow(2).mean().item()


def run_trial(config: Mapping[str, Any], report: Report | None = None, data: Any = None,
              resume_from: Mapping[str, Any] | None = None, report_state: bool = False) -> dict[str, float]:
    """Train and evaluate one TeaNet configuration; returns the final metrics.

    ``config`` is a flat dict of the keys in :data:`trials.teanet_config.FIELDS`; keys it leaves out take
    the paper's defaults. It is fully validated before any data is made or any training starts.
    ``data`` is the user's spectra the driver read (``data.format`` other than lorentz), else None.
    With ``eval.protocol=split``, ``report`` is called after every epoch with a complete snapshot of the
    metrics; with ``leave_one_out``, after every repeat (trials.repeats). ``resume_from`` /
    ``report_state``: the checkpoint rule of trials.contract. The last report carries the artifacts
    ``reconstructions.png`` (Fig. 9) and ``test_predictions.csv``.
    """
    config = complete_config(FIELDS, config)
    check_config(config)
    resume_epochs(resume_from, config)  # a state of another config fails before any work
    device = select_device(config["train.device"])
    report = report or (lambda metrics, **extra: None)
    floor = resume_from["peak_memory_mb"] if resume_from else 0.0
    with PeakMemory(device, floor_mb=floor) as memory:
        if not uses_files(config):  # the dataset counts at its size, generated or found cached
            memory.count_cached(cached_lorentz(lorentz_settings(config)))
        if config["eval.protocol"] == "leave_one_out":
            spectra = trial_data.pool(config, data, cached_lorentz)
            fit = functools.partial(_fit_repeat, config, device, memory, spectra.class_names)
            split = functools.partial(trial_data.repeat_split, config, spectra)
            return run_repeats(config, spectra, fit, split, report, memory,
                               _repeat_artifacts(config, spectra.class_names), resume_from, report_state)
        torch.manual_seed(config["train.seed"])
        splits = trial_data.fixed_split(config, data, cached_lorentz)
        run = _Run(config, _trainer(config, splits.num_classes, device), device, resume_from)
        names = _class_names(data, splits.num_classes)
        return run.train(_prepare_data(config, splits, device), memory, report, report_state, names)


def _trainer(config: Mapping[str, Any], num_classes: int, device: str) -> _JointTrainer:
    unet = create_model("teanet_unet", **unet_options(config)).to(device)
    classifier = create_model(config["model.classifier"], **classifier_options(config, num_classes))
    return _JointTrainer(config, unet, classifier.to(device), device)


def _class_names(data: Any, num_classes: int) -> tuple[str, ...]:
    return tuple(data.class_names) if data is not None else tuple(str(i) for i in range(num_classes))


def _fit_repeat(config: Mapping[str, Any], device: str, memory: PeakMemory, class_names: tuple[str, ...],
                splits: SpectraSplits, repeat: int) -> RepeatResult:
    """One repeat of the protocol: fresh networks (seeded by train.seed and the repeat), trained for
    train.epochs with the usual selection; its epochs are not reported (the repeat is the unit)."""
    torch.manual_seed(config["train.seed"] * 1000 + repeat)
    run = _Run(config, _trainer(config, splits.num_classes, device), device, None)
    data = _prepare_data(config, splits, device)
    metrics = run.train(data, memory, lambda metrics, **extra: None, False, class_names, artifacts=False)
    kept = {key: metrics[key] for key in ("recon_mse", "selected_epoch", "trainable_params", "samples_per_s")}
    return RepeatResult(run.selected["val_accuracy"], run.selected["accuracy"], splits.y_test,
                        run.predicted, kept,
                        {"trainer": run.trainer.state_dict(), "kept_classifier": run.kept_classifier},
                        figure=(run.trainer.unet, data))


def _repeat_artifacts(config: Mapping[str, Any], class_names: tuple[str, ...]):
    def artifacts(done: list[dict[str, Any]], last: RepeatResult | None) -> dict[str, bytes]:
        files = {"test_predictions.csv": predictions_csv(done, class_names)}
        if last is not None and last.figure is not None:
            files["reconstructions.png"] = reconstructions_png(config, *last.figure, class_names)
        return files
    return artifacts


def reconstructions_png(config: Mapping[str, Any], unet: nn.Module, data: _Data,
                        class_names: tuple[str, ...]) -> bytes:
    """Fig. 9 of the trial's U-Net on its validation spectra (trials.figures.validation_reconstructions)."""
    return validation_reconstructions(unet, data.x_val, data.y_val, data.val_masked, config["mask.fill"],
                                      class_names)


def _means(selected: Mapping[str, float]) -> dict[str, float]:
    """One split's accuracies under the protocol's names (a mean of one; no std), so a study whose
    objective is val_accuracy_mean reads a split trial too."""
    if not selected:
        return {}
    return {"val_accuracy_mean": selected["val_accuracy"], "accuracy_mean": selected["accuracy"]}


class _Run:
    """What a trial carries from epoch to epoch (the trainer, the batch-order generator, torch's random
    state for dropout, the selected classifier's figures, the stopwatches): trained, and saved to /
    restored from a state (trials.contract, checkpoints)."""

    def __init__(self, config: Mapping[str, Any], trainer: _JointTrainer, device: str,
                 state: Mapping[str, Any] | None):
        self.config, self.trainer, self.device = config, trainer, device
        self.generator = torch.Generator().manual_seed(config["train.seed"])
        self.training, self.total = Stopwatch(), Stopwatch()  # training only; training and evaluation
        self.epochs, self.best_val_loss = 0, math.inf
        self.selected: dict[str, float] = {}  # the kept classifier's figures (lowest validation loss)
        self.predicted = np.zeros(0, dtype=np.int64)  # the kept classifier's test predictions
        # The kept classifier's weights (CPU copies): what its figures are of, and what platform.predict
        # loads; the live trainer's classifier is the last epoch's.
        self.kept_classifier: dict[str, torch.Tensor] = {}
        self.metrics: dict[str, float] = {}
        if state is not None:
            self._restore(state)

    def state(self) -> dict[str, Any]:
        return trial_state(
            self.config, self.epochs, trainer=self.trainer.state_dict(), generator=self.generator.get_state(),
            random=random_state(self.device), best_val_loss=self.best_val_loss, selected=dict(self.selected),
            predicted=torch.from_numpy(self.predicted), kept_classifier=dict(self.kept_classifier),
            train_seconds=self.training.seconds,
            total_seconds=self.total.seconds,
            peak_memory_mb=self.metrics["peak_memory_mb"], metrics=dict(self.metrics))

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.trainer.load_state_dict(state["trainer"])
        self.generator.set_state(state["generator"])
        restore_random_state(state["random"], self.device)
        self.epochs, self.best_val_loss = state["epochs"], state["best_val_loss"]
        self.selected, self.metrics = dict(state["selected"]), dict(state["metrics"])
        self.predicted = np.asarray(state["predicted"])
        self.kept_classifier = dict(state.get("kept_classifier", {}))
        self.training.seconds, self.total.seconds = state["train_seconds"], state["total_seconds"]

    def train(self, data: _Data, memory: PeakMemory, report: Report, report_state: bool,
              class_names: tuple[str, ...], artifacts: bool = True) -> dict[str, float]:
        """Train the epochs not yet done, reporting each; the last report carries the artifacts."""
        trainer, planned = self.trainer, self.config["train.epochs"]
        trainable = count_parameters(trainer.unet) + count_parameters(trainer.classifier)
        while self.epochs < planned:
            epoch = self.epochs
            with self.total:
                with self.training:
                    train_loss = trainer.train_epoch(epoch, data, self.generator)
                val_loss, val_accuracy = evaluate(trainer.classifier, data.x_val, data.y_val)
                recon_mse = reconstruction_mse(trainer.unet, data.val_masked, data.x_val)
            self.epochs = epoch + 1
            if val_loss < self.best_val_loss:  # repo: keep the classifier with the lowest validation CE
                self.best_val_loss = val_loss
                self.predicted = predict(trainer.classifier, data.x_test)
                self.kept_classifier = {key: tensor.detach().cpu().clone()
                                        for key, tensor in trainer.classifier.state_dict().items()}
                accuracy = float((self.predicted == data.y_test.cpu().numpy()).mean())
                self.selected = {"val_accuracy": val_accuracy, "selected_epoch": self.epochs,
                                 "accuracy": accuracy}
            self.metrics = {
                "train_loss": train_loss, "val_loss": val_loss, "epoch_val_accuracy": val_accuracy,
                "recon_mse": recon_mse, **self.selected, **_means(self.selected),
                "train_time_s": self.total.seconds, "peak_memory_mb": memory.peak_mb,
                "trainable_params": trainable, **epoch_progress(self.epochs, planned),
                "samples_per_s": self.epochs * len(data.masked) / max(self.training.seconds, 1e-9),
            }
            extra: dict[str, Any] = {"state": self.state()} if report_state else {}
            if artifacts and self.epochs == planned:
                extra["artifacts"] = self._artifacts(data, class_names)
            report(self.metrics, **extra)
        return self.metrics

    def _artifacts(self, data: _Data, class_names: tuple[str, ...]) -> dict[str, bytes]:
        done = [{"y_test": data.y_test.cpu().numpy(), "predicted": self.predicted}]
        return {"test_predictions.csv": predictions_csv(done, class_names),
                "reconstructions.png": reconstructions_png(self.config, self.trainer.unet, data, class_names)}
