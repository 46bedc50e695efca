"""One HED trial: a time-ordered series → anchors + noisy copies → a binary classifier → the
classification confidence and boundary over the series (MODELS.md B1-B6, B5.8).

On a real ramp (issue 11; spectra.selection) the series is cropped to ``data.two_theta`` before the
baseline, only ``data.window`` is analysed, and K anchor ranges (``data.anchors``) make K − 1 pairs:
one classifier per pair, the paper's method on each, over the pair's segment. With two ranges (the
paper's case) the metrics are the paper's; with K > 2 each transition k has ``confidence_k``,
``boundary_k_lower``, ``boundary_k_upper`` (and ``boundary_k_error``), and ``confidence`` is their
**minimum** (``confidence_mean`` is recorded beside it). [OURS] The minimum, not the mean: the user
asked for every transition, and a model that finds one perfectly (1.0) and misses the other (0.0) has
not half-answered (a mean of 0.5 would rank it above a model at 0.6 on both); the minimum also keeps
the searcher from trading one transition away for another. ``neither_class`` counts the window's
spectra that look like neither class of their pair (spectra.neither): read a confidence only after it.
Indices (boundaries, anchors, labels) are always the whole series'.

Every epoch's report is a complete snapshot (so a trial the scheduler stops still has its result):
``train_loss``, ``train_accuracy``, ``confidence``, ``boundary_lower``, ``boundary_upper`` (from the
latest evaluation: every ``eval.every`` epochs and the last), ``boundary_error`` (only when the
transition is known and a boundary was found; NaN at a later evaluation that lost the boundary, so the
run's latest value is never a stale number), ``train_time_s`` (training only), ``peak_memory_mb``,
``trainable_params``, ``epochs``, ``planned_epochs``, ``progress``, and ``confidence_score``: confidence
with ties broken by the shorter training time (what the HED studies maximise; the paper's protocol has
no validation set). The last report (where ``report`` takes files: the trainable's) carries the artifact
``labels.json``: the window, each pair's anchors, segment, predicted labels and boundary, and the spectra
of neither class (the study draws the series figure from it). A binned model stopped by its own rule
before ``train.epochs`` says ``stop_reason = "own_rule"`` in its last report. Trials checkpoint and
resume as trials.contract says (:class:`_Run` holds what an epoch carries to the next).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.binned import bin_rows, majority_vote
from models.registry import count_parameters, create_model
from spectra.baseline import remove_baseline
from spectra.confidence import Confidence, classification_confidence
from spectra.hed_data import build_training_set
from spectra.neither import neither_in_segments
from spectra.ramp import RampSettings, simulate_ramp
from spectra.selection import Segment, crop_mask
from trials.config import complete_config
from trials.contract import OWN_RULE, epoch_progress, resume_epochs, trial_state
from trials.hed_config import (
    FIELDS,
    check_config,
    known_transitions,
    model_config,
    ramp_settings,
    series_segments,
    training_settings,
)
from trials.measure import (
    PeakMemory,
    Stopwatch,
    autocast,
    random_state,
    restore_random_state,
    select_device,
)

Report = Callable[..., None]  # report(metrics) or, with report_state, report(metrics, state=...)
_TIME_WEIGHT = 1e-6  # confidence_score = confidence − 1e-6·train_time_s: time only breaks ties (1/349 ≫ 1e-3)


class TrialDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TimeSeries:
    two_theta: np.ndarray  # [L], after the 2θ crop
    intensity: np.ndarray  # [N, L], time-ordered, after the 2θ crop
    transitions: tuple[int, ...] = ()  # the true transitions (first spectrum of each regime), where known


@functools.lru_cache(maxsize=2)
def _simulated(settings: RampSettings) -> TimeSeries:
    ramp = simulate_ramp(settings)
    return TimeSeries(ramp.two_theta, ramp.intensity, ramp.transitions)


_BASELINE_CACHE: dict[tuple, np.ndarray] = {}


def corrected(series: TimeSeries, config: Mapping[str, Any]) -> np.ndarray:
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


class MissingDataError(RuntimeError):
    """The config names a user's files, but the driver handed the trial no data."""


def series_for(config: Mapping[str, Any], data: Any = None) -> TimeSeries:
    """The user's series handed over by the driver, else the simulated ramp (made on the worker), cropped
    to data.two_theta. A config that names files never falls back to the simulator: without the files'
    data it fails."""
    if data is None and config["data.path"]:
        raise MissingDataError(f"config key 'data.path' names {config['data.path']!r}, but the trial was "
                               "handed no data: the driver reads the files and hands them to every trial")
    if data is None:
        series = _simulated(ramp_settings(config))
    else:
        series = TimeSeries(np.asarray(data.two_theta), np.asarray(data.intensity, dtype=np.float32),
                            known_transitions(config))
    keep = crop_mask(series.two_theta, config["data.two_theta"], "config key 'data.two_theta'")
    if keep is None:
        return series
    return TimeSeries(series.two_theta[keep], np.ascontiguousarray(series.intensity[:, keep]),
                      series.transitions)


def prepared(config: Mapping[str, Any], data: Any = None) -> tuple[TimeSeries, np.ndarray, list[Segment]]:
    """The series, its spectra as the models see them (cropped, baseline removed) and its segments."""
    series = series_for(config, data)
    return series, corrected(series, config), series_segments(config, len(series.intensity))


def neither_spectra(config: Mapping[str, Any], spectra: np.ndarray, parts: list[Segment]) -> np.ndarray:
    """Whole-series indices of the window's spectra of neither class (spectra.neither)."""
    return neither_in_segments(spectra, parts, config["eval.neither_factor"], config["eval.neither_bins"])


@dataclass
class _Tensors:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    rows_per_spectrum: int  # binned model: rows of one spectrum (N2); 1 otherwise
    n_test: int


def _tensors(config: Mapping[str, Any], two_theta: np.ndarray, spectra: np.ndarray, segment: Segment,
             device: str) -> _Tensors:
    """One pair's training set (its two anchor ranges, B2) and test set (its segment, in time order)."""
    x_train, y_train = build_training_set(spectra, training_settings(config, segment))
    x_test, rows = spectra[segment.start:segment.stop], 1
    if config["model.name"] == "binned_fcnn":  # rows of (2θ, I) pairs, one per offset in the bins (B5.8)
        bins = config["model.binned_fcnn.bins"]
        rows = len(two_theta) // bins
        x_train, y_train = bin_rows(two_theta, x_train, bins), np.repeat(y_train, rows)
        x_test = bin_rows(two_theta, x_test, bins)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    return _Tensors(tensor(x_train), tensor(y_train).view(-1, 1), tensor(x_test), rows, len(x_test) // rows)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor | slice]:
    if not batch_size or batch_size >= n:
        return [slice(None)]  # full batch, in order: the paper's sequences depend on row order
    order = torch.randperm(n, generator=generator)
    return list(order.split(batch_size))


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, data: _Tensors, batch_size: int,
                 generator: torch.Generator, epoch: int, stop_before_update: Callable[[float, float], bool],
                 precision: Callable[[], AbstractContextManager]) -> tuple[float, float, bool]:
    """One epoch: (mean BCE, train accuracy, stopped). Full batch, ``stop_before_update`` is checked
    on the batch's loss and accuracy before the weights change (the binned model's rule, B5.8).
    ``precision`` is the forward pass's context (bf16 autocast or nothing); the loss is fp32."""
    model.train()
    batches = _batches(len(data.x_train), batch_size, generator)
    total_loss, correct = 0.0, 0
    for index in batches:
        x, y = data.x_train[index], data.y_train[index]
        with precision():
            probability = model(x)
        probability = probability.float()
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


def run_trial(config: Mapping[str, Any], report: Report | None = None, data: Any = None,
              resume_from: Mapping[str, Any] | None = None, report_state: bool = False) -> dict[str, float]:
    """Train and evaluate one HED configuration; ``data`` is a user's series handed over by the driver
    (``None``: the simulated ramp). Returns the last report. ``resume_from`` / ``report_state``: the
    checkpoint rule of trials.contract."""
    config = complete_config(FIELDS, config)
    check_config(config)
    resume_epochs(resume_from, config)  # a state of another config fails before any work
    report = report or (lambda metrics, state=None, artifacts=None: None)
    device = select_device(config["train.device"])
    floor = resume_from["peak_memory_mb"] if resume_from else 0.0
    with PeakMemory(device, floor_mb=floor) as memory:
        series, spectra, parts = prepared(config, data)
        # The series counts at its size whether this trial made it or found it cached.
        memory.count_cached(series, spectra)
        pairs = []
        for k, segment in enumerate(parts):
            tensors = _tensors(config, series.two_theta, spectra, segment, device)
            torch.manual_seed(config["train.seed"] + k)  # pair 0: the paper's seed, as with two ranges
            model = create_model(config["model.name"], num_classes=1, length=len(series.two_theta),
                                 **model_config(config)).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=config["train.lr"],
                                         weight_decay=config["train.weight_decay"])
            pairs.append(_Pair(config, segment, tensors, model, optimizer))
        neither = neither_spectra(config, spectra, parts)
        run = _Run(config, pairs, device, resume_from)
        return run.train(series, neither, memory, report, report_state)


class _Pair:
    """One pair of anchor ranges: its segment, data, model, optimiser, batch-order generator, the
    labels of its latest evaluation and whether its own stop rule ended it."""

    def __init__(self, config: Mapping[str, Any], segment: Segment, data: _Tensors, model: nn.Module,
                 optimizer: torch.optim.Optimizer):
        self.segment, self.data, self.model, self.optimizer = segment, data, model, optimizer
        self.generator = torch.Generator().manual_seed(config["train.seed"])
        self.labels: np.ndarray | None = None  # of the latest evaluation (every eval.every epochs, the last)
        self.stopped, self.loss, self.accuracy = False, float("nan"), float("nan")

    def parts(self) -> dict[str, Any]:
        """Its state. The first pair's keys are the trial state's own (model weights under ``model``,
        as platform.predict reads them); later pairs' go under ``more_pairs``."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "labels": torch.from_numpy(self.labels),
                "pair_stopped": self.stopped, "pair_loss": self.loss, "pair_accuracy": self.accuracy}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.labels = state["labels"].numpy()
        self.stopped = state.get("pair_stopped", state.get("stopped", False))
        self.loss = state.get("pair_loss", float("nan"))
        self.accuracy = state.get("pair_accuracy", float("nan"))

    def confidence(self) -> Confidence:
        return classification_confidence(self.labels)


class _Run:
    """What a trial carries from epoch to epoch (its pairs, torch's random state for dropout, the
    latest evaluations, the stop rule's verdict, training time): trained, and saved to / restored from a
    state (trials.contract, checkpoints)."""

    def __init__(self, config: Mapping[str, Any], pairs: list[_Pair], device: str,
                 state: Mapping[str, Any] | None):
        self.config, self.pairs, self.device = config, pairs, device
        self.training = Stopwatch()
        self.epochs, self.stopped = 0, False
        # boundary_error metrics once in the record: a later epoch without a boundary says NaN
        self.errors_logged: set[str] = set()
        self.metrics: dict[str, float] = {}
        if state is not None:
            self._restore(state)

    def state(self, peak_memory_mb: float) -> dict[str, Any]:
        more = {"more_pairs": [pair.parts() for pair in self.pairs[1:]]} if len(self.pairs) > 1 else {}
        return trial_state(
            self.config, self.epochs, **self.pairs[0].parts(), **more, random=random_state(self.device),
            errors_logged=sorted(self.errors_logged), stopped=self.stopped,
            train_seconds=self.training.seconds, peak_memory_mb=peak_memory_mb, metrics=dict(self.metrics))

    def _restore(self, state: Mapping[str, Any]) -> None:
        for pair, saved in zip(self.pairs, [state, *state.get("more_pairs", [])], strict=True):
            pair.restore(saved)
        restore_random_state(state["random"], self.device)
        self.epochs, self.stopped = state["epochs"], state["stopped"]
        self.errors_logged, self.metrics = set(state["errors_logged"]), dict(state["metrics"])
        self.training.seconds = state["train_seconds"]

    def train(self, series: TimeSeries, neither: np.ndarray, memory: PeakMemory, report: Report,
              report_state: bool) -> dict[str, float]:
        config, planned = self.config, self.config["train.epochs"]
        trainable = sum(count_parameters(pair.model) for pair in self.pairs)
        stop_rule = _stop_rule(config)
        precision = functools.partial(autocast, config["train.precision"], self.device)
        while self.epochs < planned and not self.stopped:
            epoch = self.epochs
            with self.training:
                for pair in self.pairs:
                    if not pair.stopped:
                        pair.loss, pair.accuracy, pair.stopped = _train_epoch(
                            pair.model, pair.optimizer, pair.data, config["train.batch_size"], pair.generator,
                            epoch, stop_rule, precision)
            self.epochs, self.stopped = epoch + 1, all(pair.stopped for pair in self.pairs)
            last = self.stopped or self.epochs == planned
            for pair in self.pairs:
                if pair.labels is None or last or self.epochs % config["eval.every"] == 0:
                    pair.labels = predict_labels(pair.model, pair.data, config["eval.batchnorm"])
            self.metrics = self._metrics(series, len(neither), memory.peak_mb, trainable)
            extra: dict[str, Any] = {}
            if report_state:
                extra["state"] = self.state(self.metrics["peak_memory_mb"])
            if last and _takes_artifacts(report):  # sent once (trials.contract): what the figure draws
                extra["artifacts"] = {"labels.json": self.labels_json(series, neither)}
            report(self.metrics, **extra)
        return self.metrics

    def _metrics(self, series: TimeSeries, neither: int, peak_mb: float, trainable: int) -> dict[str, float]:
        seconds = self.training.seconds
        results = [pair.confidence() for pair in self.pairs]
        overall = min(result.confidence for result in results)  # [OURS] the minimum: module docstring
        metrics = {"train_loss": float(np.mean([pair.loss for pair in self.pairs])),
                   "train_accuracy": float(np.mean([pair.accuracy for pair in self.pairs])),
                   "confidence": overall, "neither_class": neither}
        if len(self.pairs) == 1:  # the paper's case: the paper's names
            self._pair_metrics(metrics, "boundary_lower", "boundary_upper", "boundary_error", "",
                               self.pairs[0], results[0], series)
        else:
            metrics["confidence_mean"] = float(np.mean([result.confidence for result in results]))
            for k, (pair, result) in enumerate(zip(self.pairs, results, strict=True), start=1):
                self._pair_metrics(metrics, f"boundary_{k}_lower", f"boundary_{k}_upper",
                                   f"boundary_{k}_error", f"confidence_{k}", pair, result, series)
        metrics.update({"train_time_s": seconds, "peak_memory_mb": peak_mb, "trainable_params": trainable,
                        **epoch_progress(self.epochs, self.config["train.epochs"]),
                        "confidence_score": overall - _TIME_WEIGHT * seconds})
        if self.stopped and self.epochs < self.config["train.epochs"]:
            metrics["stop_reason"] = OWN_RULE
        return metrics

    def _pair_metrics(self, metrics: dict[str, float], lower: str, upper: str, error_key: str,
                      confidence_key: str, pair: _Pair, result: Confidence, series: TimeSeries) -> None:
        """A pair's boundary (whole-series indices) and, where the series knows the transition between
        its anchors, the boundary error."""
        if confidence_key:
            metrics[confidence_key] = result.confidence
        metrics[lower] = pair.segment.start + result.boundary_lower
        metrics[upper] = pair.segment.start + result.boundary_upper
        error = result.boundary_error(_transition_between(pair.segment, series.transitions))
        if error is not None:  # only where the series knows its transition and a boundary was found
            metrics[error_key] = error
            self.errors_logged.add(error_key)
        elif error_key in self.errors_logged:  # the boundary is gone: NaN, not a stale number
            metrics[error_key] = float("nan")

    def labels_json(self, series: TimeSeries, neither: np.ndarray) -> bytes:
        """The predictions of the last evaluation, for the study's figure and the user (whole-series
        indices throughout)."""
        pairs = []
        for pair in self.pairs:
            result, segment = pair.confidence(), pair.segment
            pairs.append({"class0": list(segment.class0), "class1": list(segment.class1),
                          "start": segment.start, "stop": segment.stop,
                          "labels": [int(v) for v in pair.labels], "confidence": result.confidence,
                          "found": result.found, "boundary_lower": segment.start + result.boundary_lower,
                          "boundary_upper": segment.start + result.boundary_upper})
        document = {"spectra": len(series.intensity), "window": [self.pairs[0].segment.start,
                                                                 self.pairs[-1].segment.stop],
                    "two_theta": [float(series.two_theta[0]), float(series.two_theta[-1])],
                    "pairs": pairs, "neither_class": [int(i) for i in neither]}
        return json.dumps(document, indent=1).encode()


def _takes_artifacts(report: Report) -> bool:
    """Whether ``report`` takes files (the trainable's does; a test's plain list.append does not)."""
    try:
        parameters = inspect.signature(report).parameters
    except (TypeError, ValueError):
        return False
    return "artifacts" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _transition_between(segment: Segment, transitions: tuple[int, ...]) -> int | None:
    """The one known transition between a pair's last class-0 and first class-1 anchor, relative to
    the segment's start (None when none or several are known there)."""
    inside = [t for t in transitions if segment.class0[-1] < t <= segment.class1[0]]
    return inside[0] - segment.start if len(inside) == 1 else None
