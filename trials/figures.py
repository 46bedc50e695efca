"""Figures of TeaNet trials as PNG bytes (matplotlib's object API, no pyplot state; Agg canvas).

- :func:`reconstruction_png`: original, masked and reconstructed spectra of a few validation samples
  (the paper's Fig. 9), made by every TeaNet trial that finishes.
- :func:`confusion_png`: the confusion of a trial's test predictions (true × predicted class, counts
  over every repeat), drawn for a study's best trial at the end of the search.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def reconstruction_png(original: np.ndarray, masked: np.ndarray, reconstructed: np.ndarray,
                       labels: list[str], fill: float) -> bytes:
    """One panel per sample: the original, the masked input (masked points, ``fill``, hidden so the
    gap shows) and the U-Net's reconstruction, over the point index."""
    count = len(original)
    figure = Figure(figsize=(8, 2.2 * count), layout="constrained")
    axes = figure.subplots(count, 1, squeeze=False)[:, 0]
    points = np.arange(original.shape[1])
    for ax, row, hidden, rebuilt, label in zip(axes, original, masked, reconstructed, labels, strict=True):
        ax.plot(points, row, color="black", linewidth=1.2, label="original")
        ax.plot(points, np.where(hidden == fill, np.nan, hidden), color="tab:blue", linewidth=1,
                label="masked input")
        ax.plot(points, rebuilt, color="tab:red", linewidth=1, linestyle="--", label="reconstructed")
        ax.set_title(f"class {label}", fontsize=9)
        ax.set_ylabel("intensity")
    axes[0].legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("point")
    return _png(figure)


@torch.no_grad()
def validation_reconstructions(unet: torch.nn.Module, x_val: torch.Tensor, y_val: torch.Tensor,
                               val_masked: torch.Tensor, fill: float, class_names: tuple[str, ...],
                               samples: int = 4) -> bytes:
    """Fig. 9 for a trial: up to ``samples`` validation spectra, each of another class, masked and
    reconstructed by the U-Net (eval mode)."""
    labels = y_val.cpu().numpy()
    first = np.sort(np.unique(labels, return_index=True)[1][:samples])
    rows = torch.from_numpy(first).to(x_val.device)
    was_training = unet.training
    unet.eval()
    rebuilt = unet(val_masked[rows]).float()
    unet.train(was_training)
    names = [class_names[i] for i in labels[first]]
    return reconstruction_png(x_val[rows].cpu().numpy(), val_masked[rows].cpu().numpy(),
                              rebuilt.cpu().numpy(), names, fill)


def confusion_png(true: list[str], predicted: list[str], title: str) -> bytes:
    """Counts of (true, predicted) class pairs as a heat map; class names on the axes when few."""
    names = sorted(set(true) | set(predicted))
    index = {name: i for i, name in enumerate(names)}
    counts = np.zeros((len(names), len(names)), dtype=np.int64)
    for t, p in zip(true, predicted, strict=True):
        counts[index[t], index[p]] += 1
    size = min(12.0, 3 + 0.25 * len(names))
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(counts, cmap="Blues")
    figure.colorbar(image, ax=ax, label="test spectra")
    if len(names) <= 40:
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title}\naccuracy {accuracy:.3f} over {counts.sum()} test spectra", fontsize=9)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return _png(figure)
