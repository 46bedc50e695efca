"""One HED trial: a time-ordered series → anchors + noisy copies → a binary classifier → the
classification confidence and boundary over the whole series (MODELS.md B1-B6, B5.8).

Every epoch's report is a complete snapshot (so a trial the scheduler stops still has its result):
``train_loss``, ``train_accuracy``, ``confidence``, ``boundary_lower``, ``boundary_upper``,
``boundary_error`` (when the transition is known), ``train_time_s`` (training only), ``peak_memory_mb``,
``trainable_params``, ``epochs`` (confidence and boundaries from the latest evaluation: every
``eval.every`` epochs and the last), and ``confidence_score``: confidence with ties broken by the shorter
training time (what the HED studies maximise; the paper's protocol has no validation set).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.binned import bin_rows, majority_vote
from models.config import complete_config
from models.hed_config import FIELDS, check_config, model_config, ramp_settings, training_settings
from models.measure import PeakMemory, Stopwatch, select_device
from models.registry import count_parameters, create_model
from spectra.baseline import remove_baseline
from spectra.confidence import classification_confidence
from spectra.hed_data import build_training_set
from spectra.ramp import RampSettings, simulate_ramp

Report = Callable[[dict[str, float]], None]
_TIME_WEIGHT = 1e-6  # confidence_score = confidence − 1e-6·train_time_s: time only breaks ties (1/349 ≫ 1e-3)


class TrialDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TimeSeries:
    two_theta: np.ndarray  # [L]
    intensity: np.ndarray  # [N, L], time-ordered
    transition: int | None  # index of the first class-1 spectrum, when known


@functools.lru_cache(maxsize=2)
def _simulated(settings: RampSettings) -> TimeSeries:
    ramp = simulate_ramp(settings)
    return TimeSeries(ramp.two_theta, ramp.intensity, ramp.transition)


_BASELINE_CACHE: dict[tuple, np.ndarray] = {}


def _corrected(series: TimeSeries, config: Mapping[str, Any]) -> np.ndarray:
    """Baseline-removed spectra, computed once per process for a series and ALS settings."""
    if not config["data.baseline"]:
        return series.intensity
    digest = hashlib.sha1(series.intensity.tobytes()).hexdigest()
    key = (digest, config["data.als_lambda"], config["data.als_p"], config["data.als_iterations"])
    if key not in _BASELINE_CACHE:
        _BASELINE_CACHE.clear()  # one series per process is what trials share
        _BASELINE_CACHE[key] = remove_baseline(series.intensity, lam=config["data.als_lambda"],
                                               p=config["data.als_p"],
                                               iterations=config["data.als_iterations"])
    return _BASELINE_CACHE[key]


def series_for(config: Mapping[str, Any], data: Any = None) -> TimeSeries:
    """The user's series handed over by the driver, else the simulated ramp (made on the worker)."""
    if data is None:
        return _simulated(ramp_settings(config))
    transition = config["data.transition"] if config["data.transition"] >= 0 else None
    return TimeSeries(np.asarray(data.two_theta), np.asarray(data.intensity, dtype=np.float32), transition)


@dataclass
class _Tensors:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    rows_per_spectrum: int  # binned model: rows of one spectrum (N2); 1 otherwise
    n_test: int


def _tensors(config: Mapping[str, Any], series: TimeSeries, device: str) -> _Tensors:
    spectra = _corrected(series, config)
    x_train, y_train = build_training_set(spectra, training_settings(config))
    x_test, rows = spectra, 1
    if config["model.name"] == "binned_fcnn":  # rows of (2θ, I) pairs, one per offset in the bins (B5.8)
        bins = config["model.binned_fcnn.bins"]
        rows = len(series.two_theta) // bins
        x_train, y_train = bin_rows(series.two_theta, x_train, bins), np.repeat(y_train, rows)
        x_test = bin_rows(series.two_theta, spectra, bins)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    return _Tensors(tensor(x_train), tensor(y_train).view(-1, 1), tensor(x_test), rows, len(spectra))


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor | slice]:
    if not batch_size or batch_size >= n:
        return [slice(None)]  # full batch, in order: the paper's sequences depend on row order
    order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: _Tensors, batch_size: int,
                 generator: torch.Generator, epoch: int,
                 stop_before_update: Callable[[float, float], bool]) -> tuple[float, float, bool]:
    """One epoch: (mean BCE, train accuracy, stopped). Full batch, ``stop_before_update`` is checked
    on the batch's loss and accuracy before the weights change (the binned model's rule, B5.8)."""
    model.train()
    batches = _batches(len(data.x_train), batch_size, generator)
    total_loss, correct = 0.0, 0
    for index in batches:
        x, y = data.x_train[index], data.y_train[index]
        probability = model(x)
        loss = F.binary_cross_entropy(probability, y)
        if not torch.isfinite(loss):
            raise TrialDivergedError(f"loss became {loss.item()} at epoch {epoch + 1}: the trial diverged; "
                                     "lower the learning rate or check the data")
        batch_correct = ((probability.detach() > 0.5).float() == y).sum().item()
        if len(batches) == 1 and stop_before_update(loss.item(), batch_correct / len(y)):
            return loss.item(), batch_correct / len(y), True
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += batch_correct
    mean_loss, accuracy = total_loss / len(data.x_train), correct / len(data.x_train)
    return mean_loss, accuracy, len(batches) > 1 and stop_before_update(mean_loss, accuracy)


@torch.no_grad()
def predict_labels(model: nn.Module, data: _Tensors, batchnorm: str) -> np.ndarray:
    """0/1 label per test spectrum. ``batchnorm="train"`` is the paper's quirk (B3): the test set is
    one batch and BatchNorm uses its statistics; the binned model votes per spectrum (B5.8)."""
    model.train(batchnorm == "train")
    # test=True: the paper-sequence models lay the test set out as a test batch (B5.4, B5.5) even
    # when BatchNorm runs in train mode.
    probability = model(data.x_test, test=True).view(-1).cpu().numpy()
    model.train()
    labels = (probability > 0.5).astype(int)
    if data.rows_per_spectrum > 1:
        return majority_vote(labels, data.n_test)
    return labels


def _stop_rule(config: Mapping[str, Any]) -> Callable[[float, float], bool]:
    """B5.8's early stop for the binned model: loss below 0.15, or train accuracy above 0.99."""
    if config["model.name"] != "binned_fcnn":
        return lambda loss, accuracy: False
    return lambda loss, accuracy: loss < config["train.stop_loss"] or accuracy > config["train.stop_accuracy"]


def run_trial(config: Mapping[str, Any], report: Report | None = None, data: Any = None) -> dict[str, float]:
    """Train and evaluate one HED configuration; ``data`` is a user's series handed over by the driver
    (``None``: the simulated ramp). Returns the last report."""
    config = complete_config(FIELDS, config)
    check_config(config)
    report = report or (lambda metrics: None)
    device = select_device(config["train.device"])
    series = series_for(config, data)
    with PeakMemory(device) as memory:
        tensors = _tensors(config, series, device)
        torch.manual_seed(config["train.seed"])
        model = create_model(config["model.name"], num_classes=1, length=len(series.two_theta),
                             **model_config(config)).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["train.lr"],
                                     weight_decay=config["train.weight_decay"])
        return _train(config, model, optimizer, tensors, series, memory, report)


def _train(config: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, data: _Tensors,
           series: TimeSeries, memory: PeakMemory, report: Report) -> dict[str, float]:
    generator = torch.Generator().manual_seed(config["train.seed"])
    training, metrics = Stopwatch(), {}
    trainable, stop_rule = count_parameters(model), _stop_rule(config)
    result = None  # the latest evaluation of the series (every eval.every epochs, and the last)
    for epoch in range(config["train.epochs"]):
        with training:
            loss, accuracy, stopped = _train_epoch(model, optimizer, data, config["train.batch_size"],
                                                   generator, epoch, stop_rule)
        last = stopped or epoch + 1 == config["train.epochs"]
        if result is None or last or (epoch + 1) % config["eval.every"] == 0:
            result = classification_confidence(predict_labels(model, data, config["eval.batchnorm"]))
        metrics = {"train_loss": loss, "train_accuracy": accuracy, "confidence": result.confidence,
                   "boundary_lower": result.boundary_lower, "boundary_upper": result.boundary_upper,
                   "train_time_s": training.seconds, "peak_memory_mb": memory.peak_mb,
                   "trainable_params": trainable, "epochs": epoch + 1,
                   "confidence_score": result.confidence - _TIME_WEIGHT * training.seconds}
        error = result.boundary_error(series.transition)
        if error is not None:
            metrics["boundary_error"] = error
        report(metrics)
        if stopped:
            break
    return metrics
