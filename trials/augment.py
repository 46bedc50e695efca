"""Augmented training copies for the classifier-only baselines of TeaNet's Table 3 (issue 9, part 3).

Each function makes ``copies`` augmented copies of every training spectrum, once per trial (as TeaNet
masks its copies once), with soft targets [N·copies, classes]:

- ``cnn_partial``: the masked copies themselves (masked points = ``fill``), the classifier trained on
  them directly (TeaNet without the U-Net).
- ``cutmix``: the masked region filled with the same points of another training spectrum of any class;
  the target mixes the two labels by area (the masked fraction goes to the other spectrum's class).
- ``mixup``: two spectra and their labels mixed linearly, λ ~ Beta(α, α) per copy.

The regions come from the config's mask scheme (spectra.masks), so CutMix and CNN_Partial erase what
TeaNet masks.
"""

from __future__ import annotations

import numpy as np

from spectra.masks import MaskScheme, draw_masks

AUGMENTED = ("cnn_partial", "cutmix", "mixup")


def _one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    targets = np.zeros((len(y), classes), dtype=np.float32)
    targets[np.arange(len(y)), y] = 1.0
    return targets


def _partners(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """For each copy, another training spectrum (any class, never itself when there is another)."""
    source = np.repeat(np.arange(n), count // n)
    offset = rng.integers(1, max(n, 2), count)
    return (source + offset) % n


def augment(method: str, x: np.ndarray, y: np.ndarray, classes: int, copies: int, rng: np.random.Generator,
            scheme: MaskScheme, fill: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(augmented copies float32 [N·copies, L], soft targets float32 [N·copies, classes])."""
    n, length = x.shape
    source = np.repeat(np.arange(n), copies)
    copied, targets = x[source].astype(np.float32), _one_hot(y[source], classes)
    if method == "cnn_partial":
        copied[draw_masks(scheme, length, len(source), rng)] = fill
        return copied, targets
    partner = _partners(n, len(source), rng)
    if method == "cutmix":
        masks = draw_masks(scheme, length, len(source), rng)
        copied[masks] = x[partner].astype(np.float32)[masks]
        area = masks.mean(axis=1, dtype=np.float32)[:, None]
    elif method == "mixup":
        area = rng.beta(alpha, alpha, (len(source), 1)).astype(np.float32)  # the partner's share
        copied = (1 - area) * copied + area * x[partner].astype(np.float32)
    else:
        raise ValueError(f"method {method!r}: expected one of {', '.join(AUGMENTED)}")
    return copied, (1 - area) * targets + area * _one_hot(y[partner], classes)
