"""The classifier-only baselines of Table 3 (CNN_Full, CNN_Partial, CutMix, MixUp): TeaNet's classifier,
its optimiser, LR schedule and model selection (lowest validation cross-entropy; MODELS.md A6-A7), without
the U-Net. CNN_Full learns from the original spectra alone; the others from their augmented copies
(trials.augment) together with the originals, paired in batches as TeaNet pairs masked and original
spectra. One call trains one split.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.registry import count_parameters, create_model
from spectra.splits import SpectraSplits
from trials.augment import augment
from trials.repeats import RepeatResult
from trials.teanet import batch_pairs, evaluate, predict
from trials.teanet_config import classifier_options, mask_scheme


def _tensor(array: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _copies(config: Mapping[str, Any], splits: SpectraSplits, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """The method's augmented copies and soft targets (none for cnn_full)."""
    method, classes = config["method"], splits.num_classes
    if method == "cnn_full":
        return np.zeros((0, splits.length), np.float32), np.zeros((0, classes), np.float32)
    rng = np.random.default_rng([config["train.seed"], repeat, 1])
    return augment(method, splits.x_train, splits.y_train, classes, config["mask.copies"], rng,
                   mask_scheme(config), config["mask.fill"], config["mixup.alpha"])


def _steps(n_copies: int, n_train: int, batch_size: int, generator: torch.Generator, device: str):
    """(copy indices, original indices) per step: TeaNet's pairing, or plain batches of originals."""
    if n_copies:
        yield from batch_pairs(n_copies, n_train, batch_size, generator, device)
        return
    order = torch.randperm(n_train, generator=generator).to(device)
    empty = order[:0]
    for start in range(0, n_train, batch_size):
        yield empty, order[start:start + batch_size]


def fit_classifier(config: Mapping[str, Any], device: str, splits: SpectraSplits,
                   repeat: int) -> RepeatResult:
    """Train the classifier on one split for train.epochs; the one with the lowest validation loss is
    tested."""
    torch.manual_seed(config["train.seed"] * 1000 + repeat)
    classes = splits.num_classes
    model = create_model(config["model.classifier"], **classifier_options(config, classes)).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config["train.lr_classifier"])
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, config["train.lr_step"], config["train.lr_decay"])
    copies, soft = (_tensor(a, device) for a in _copies(config, splits, repeat))
    x_train, y_train = _tensor(splits.x_train, device), _tensor(splits.y_train, device)
    x_val, y_val = _tensor(splits.x_val, device), _tensor(splits.y_val, device)
    x_test = _tensor(splits.x_test, device)
    hard = F.one_hot(y_train, classes).float()
    generator = torch.Generator().manual_seed(config["train.seed"] * 1000 + repeat)
    best, selected, predicted, seen, started = math.inf, {}, np.zeros(0, np.int64), 0, time.perf_counter()
    for epoch in range(config["train.epochs"]):
        model.train()
        for copy_idx, original_idx in _steps(len(copies), len(x_train), config["train.batch_size"], generator,
                                             device):
            outputs = model(torch.cat([copies[copy_idx], x_train[original_idx]]))
            loss = F.cross_entropy(outputs.float(), torch.cat([soft[copy_idx], hard[original_idx]]))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}: the trial "
                                         "diverged; lower train.lr_classifier")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            seen += len(copy_idx) + len(original_idx)
        schedule.step()
        val_loss, val_accuracy = evaluate(model, x_val, y_val)
        if val_loss < best:  # as TeaNet: keep the classifier with the lowest validation CE
            best, predicted = val_loss, predict(model, x_test)
            selected = {"val_accuracy": val_accuracy, "selected_epoch": epoch + 1}
    accuracy = float((predicted == splits.y_test).mean())
    metrics = {"selected_epoch": selected["selected_epoch"], "trainable_params": count_parameters(model),
               "samples_per_s": seen / max(time.perf_counter() - started, 1e-9)}
    return RepeatResult(selected["val_accuracy"], accuracy, splits.y_test, predicted, metrics,
                        {"classifier": model.state_dict()})
