"""A trial that is a sequence of repeats of the leave-one-out protocol (TeaNet §5.2; issue 9, part 2).

Each repeat trains from scratch on its own split and yields the selected model's validation and test
accuracy. The trial reports after every repeat (``eval.early_stopping=repeats``): ``repeat_accuracy``
and ``repeat_val_accuracy`` of that repeat at its step, and the running ``accuracy_mean``,
``accuracy_std``, ``val_accuracy_mean`` and ``val_accuracy_std`` over the repeats done (std with
ddof 0). The unit of progress is the repeat: ``epochs`` counts repeats done and ``planned_epochs`` is
``eval.repeats``, so ASHA's rungs fall between repeats and a trial it stops was judged on the mean of
its first repeats (successive halving over repeats), never on a half-trained network. With
``eval.early_stopping=none`` the trial reports once, at the end, and cannot be stopped.
``val_accuracy`` and ``accuracy`` carry the means too, so a study whose objective is ``val_accuracy``
reads the protocol's mean.

Checkpoints hold the repeats done (their accuracies and test predictions) and the last repeat's
models; a resumed trial continues at the next repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from spectra.protocol import ProtocolPool
from spectra.splits import SpectraSplits
from trials.contract import epoch_progress, trial_state
from trials.measure import PeakMemory, Stopwatch


@dataclass
class RepeatResult:
    """One repeat: the selected model's accuracies, its test predictions, extra numeric metrics, and
    the state parts of its models (e.g. ``trainer=...``) for the checkpoint."""

    val_accuracy: float
    accuracy: float
    y_test: np.ndarray
    predicted: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    parts: dict[str, Any] = field(default_factory=dict)
    figure: Any = None  # what the trial's artifacts are drawn from (e.g. reconstructions); not saved


Fit = Callable[[SpectraSplits, int], RepeatResult]
Artifacts = Callable[[list[dict[str, Any]], RepeatResult | None], dict[str, bytes]]


def summary(done: list[dict[str, Any]]) -> dict[str, float]:
    """Means and standard deviations (ddof 0) of the repeats done."""
    val = np.array([r["val_accuracy"] for r in done])
    test = np.array([r["accuracy"] for r in done])
    return {"accuracy_mean": float(test.mean()), "accuracy_std": float(test.std()),
            "val_accuracy_mean": float(val.mean()), "val_accuracy_std": float(val.std()),
            "accuracy": float(test.mean()), "val_accuracy": float(val.mean())}


def predictions_csv(done: list[dict[str, Any]], class_names: tuple[str, ...]) -> bytes:
    """``repeat,true,predicted`` per test spectrum (class names), for the confusion of the best trial."""
    lines = ["repeat,true,predicted"]
    for number, result in enumerate(done):
        for true, guess in zip(result["y_test"].tolist(), result["predicted"].tolist(), strict=True):
            lines.append(f"{number},{_cell(class_names[true])},{_cell(class_names[guess])}")
    return ("\n".join(lines) + "\n").encode()


def _cell(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if ("," in name or '"' in name) else name


def run_repeats(config: Mapping[str, Any], spectra: ProtocolPool, fit: Fit,
                split: Callable[[int], SpectraSplits], report: Callable[..., None], memory: PeakMemory,
                artifacts: Artifacts, resume_from: Mapping[str, Any] | None = None,
                report_state: bool = False, repeats: int | None = None) -> dict[str, float]:
    """Run the repeats not yet done (``repeats``, default eval.repeats), reporting after each (see the
    module's docstring)."""
    repeats = repeats or config["eval.repeats"]
    clock = Stopwatch()
    done: list[dict[str, Any]] = []
    if resume_from is not None:
        done = [_restored(r) for r in resume_from["repeats"]]
        clock.seconds = resume_from["total_seconds"]
    metrics: dict[str, float] = dict(resume_from["metrics"]) if resume_from else {}
    base = {"classes": spectra.num_classes, "classes_left_out": len(spectra.left_out)}
    while len(done) < repeats:
        with clock:
            result = fit(split(len(done)), len(done))
        done.append({"val_accuracy": result.val_accuracy, "accuracy": result.accuracy,
                     "y_test": result.y_test, "predicted": result.predicted})
        metrics = {**result.metrics, **base, "repeat_val_accuracy": result.val_accuracy,
                   "repeat_accuracy": result.accuracy, **summary(done), "train_time_s": clock.seconds,
                   "peak_memory_mb": memory.peak_mb, **epoch_progress(len(done), repeats)}
        last = len(done) == repeats
        if config["eval.early_stopping"] == "none" and not last:
            continue
        extra: dict[str, Any] = {}
        if report_state:
            extra["state"] = trial_state(config, len(done), repeats=[_saved(r) for r in done],
                                         total_seconds=clock.seconds, peak_memory_mb=memory.peak_mb,
                                         metrics=dict(metrics), **result.parts)
        if last:
            extra["artifacts"] = artifacts(done, result)
        report(metrics, **extra)
    return metrics


def _saved(result: Mapping[str, Any]) -> dict[str, Any]:
    return {**result, "y_test": torch.from_numpy(result["y_test"]),
            "predicted": torch.from_numpy(result["predicted"])}


def _restored(result: Mapping[str, Any]) -> dict[str, Any]:
    return {**result, "y_test": np.asarray(result["y_test"]), "predicted": np.asarray(result["predicted"])}
