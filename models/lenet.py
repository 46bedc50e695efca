"""TeaNet's pyramid LeNet classifiers (TeaNet repo lenet_ir.py / lenet_usgs.py, MODELS.md A4, A5).

Both share a feature extractor written in a small mini-language, e.g. ``"16,16,M,32,32,M"``: an integer
is Conv1d(kernel, padding kernel//2) -> BatchNorm1d -> ReLU with that many output channels, ``M`` is
MaxPool1d(2). After every ``M`` the kernel shrinks (the "pyramid"): by 4 in ``lenet_ir``, to
ceil(k/2) in ``lenet_usgs`` (the "double pyramid": channels grow while kernels shrink).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model

LAYERS_HELP = "comma-separated conv widths (positive integers) and 'M' (max-pool by 2), e.g. '16,16,M'"


def parse_layers(layers: str) -> list[int | str]:
    """Parse a layers string such as ``"16,16,M"`` into ``[16, 16, "M"]``; raise ValueError if malformed."""
    spec: list[int | str] = []
    for token in layers.split(","):
        token = token.strip()
        if token.upper() == "M":
            spec.append("M")
        elif token.isdigit() and int(token) > 0:
            spec.append(int(token))
        else:
            raise ValueError(f"layers: expected {LAYERS_HELP}; got {layers!r} (bad item {token!r})")
    if not any(isinstance(item, int) for item in spec):
        raise ValueError(f"layers: expected {LAYERS_HELP}; got {layers!r} (no conv layer)")
    return spec


def make_features(layers: str, kernel: int, shrink: Callable[[int], int]) -> nn.Sequential:
    """Build the conv feature extractor of ``layers``; ``shrink`` gives the kernel after each pool."""
    modules: list[nn.Module] = []
    in_channels = 1
    for item in parse_layers(layers):
        if item == "M":
            modules.append(nn.MaxPool1d(2))
            kernel = shrink(kernel)
            continue
        if kernel < 1:
            raise ValueError(
                f"layers {layers!r}: the kernel shrank to {kernel} before a conv; "
                "use a larger kernel or fewer 'M'"
            )
        # padding k//2 keeps odd kernels length-preserving; even kernels add one point (repo behaviour, A5).
        modules += [
            nn.Conv1d(in_channels, item, kernel, padding=kernel // 2),
            nn.BatchNorm1d(item),
            nn.ReLU(inplace=True),
        ]
        in_channels = item
    return nn.Sequential(*modules)


def flat_dim(features: nn.Module, length: int) -> int:
    """Size of the flattened features for one spectrum of ``length``, by a dry forward pass."""
    was_training = features.training
    features.eval()  # eval mode so the dry pass does not touch the BatchNorm running statistics
    try:
        with torch.no_grad():
            return features(torch.zeros(1, 1, length)).numel()
    except RuntimeError as error:  # a pool or conv got an empty input
        raise ValueError(f"length={length} is too short for these layers: {error}") from None
    finally:
        features.train(was_training)


def _check_input(x: torch.Tensor, length: int) -> None:
    if x.dim() != 2 or x.shape[-1] != length:
        raise ValueError(f"expected input of shape (batch, {length}), got {tuple(x.shape)}")


class LeNetIR(nn.Module):
    """Pyramid LeNet for RRUFF-IR and ReLab (MODELS.md A4): features -> flatten -> Linear -> logits.

    The repo ends with LogSoftmax and applies CrossEntropyLoss; CE on logits is the same loss.
    """

    output = "logits"

    def __init__(self, num_classes: int, length: int, layers: str, kernel: int) -> None:
        super().__init__()
        self.length = length
        self.features = make_features(layers, kernel, shrink=lambda k: k - 4)  # repo: k - 4 after 'M'
        self.head = nn.Linear(flat_dim(self.features, length), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.length)
        return self.head(self.features(x.unsqueeze(1)).flatten(1))


class LeNetUSGS(nn.Module):
    """Double-pyramid LeNet for USGS and synthetic data (MODELS.md A5).

    Head: Linear(D -> hidden) -> BN -> Tanh -> MaxPool1d(2) over the features -> Dropout
    -> Linear(hidden/2 -> classes) -> BN -> Softmax (``output="softmax"``, repo) or nothing ("logits").
    """

    def __init__(
        self,
        num_classes: int,
        length: int,
        layers: str,
        kernel: int,
        hidden: int,
        dropout: float,
        output: str,
    ) -> None:
        super().__init__()
        if output not in ("softmax", "logits"):
            raise ValueError(f"output must be 'softmax' (repo) or 'logits', got {output!r}")
        if hidden < 2:
            raise ValueError(f"hidden must be >= 2 (it is max-pooled by 2), got {hidden}")
        self.output = output
        self.length = length
        self.features = make_features(layers, kernel, shrink=lambda k: math.ceil(k / 2))
        self.fc1 = nn.Linear(flat_dim(self.features, length), hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden // 2, num_classes)
        self.bn2 = nn.BatchNorm1d(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.length)
        x = self.features(x.unsqueeze(1)).flatten(1)
        x = torch.tanh(self.bn1(self.fc1(x)))
        # The repo pools the hidden features as a 1-channel sequence: neighbouring pairs -> their max.
        x = F.max_pool1d(x.unsqueeze(1), 2).squeeze(1)
        x = self.bn2(self.fc2(self.dropout(x)))
        # Softmax output is the repo's quirk: its CrossEntropyLoss is then applied to probabilities.
        return x.softmax(dim=1) if self.output == "softmax" else x


@register_model("lenet_ir", kind="classifier")
def lenet_ir(
    *, num_classes: int = 430, length: int = 1024, layers: str = "16,16,M", kernel: int = 21
) -> LeNetIR:
    """Pyramid LeNet of TeaNet for RRUFF-IR / ReLab (MODELS.md A4); 3,528,798 parameters at 430 classes."""
    return LeNetIR(num_classes, length, layers, kernel)


@register_model("lenet_usgs", kind="classifier")
def lenet_usgs(
    *,
    num_classes: int = 212,
    length: int = 1024,
    layers: str = "16,16,M,32,32,M,64,64,M,128,128,M,256,256,M",
    kernel: int = 21,
    hidden: int = 2048,
    dropout: float = 0.5,
    output: str = "softmax",
) -> LeNetUSGS:
    """Double-pyramid LeNet of TeaNet for USGS / synthetic data (MODELS.md A5); 17,858,156 parameters
    at 212 classes. ``output="softmax"`` reproduces the repo; use ``"logits"`` for fair tuning."""
    return LeNetUSGS(num_classes, length, layers, kernel, hidden, dropout, output)
