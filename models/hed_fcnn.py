"""FCNN-1D of the HED comparison ("FNN1DModel", MODELS.md B5.1): a fully connected classifier.

LayerNorm(length) -> [Linear -> LayerNorm -> ReLU] per hidden width -> Linear(-> 1) -> Sigmoid.
"""

from __future__ import annotations

import torch
from torch import nn

from .hed_blocks import INITS, InputNorm, check_binary, check_choice, parse_ints
from .registry import register_model


class FCNN1d(nn.Module):
    """FCNN-1D (B5.1): 1,204,335 parameters at length 4023 and widths 256/512/64."""

    output = "sigmoid"

    def __init__(self, length: int, widths: str, init: str, dropout: float) -> None:
        super().__init__()
        check_choice("init", init, INITS)
        layers: list[nn.Module] = [InputNorm(length)]
        previous = length
        for width in parse_ints("widths", widths):
            layers += [nn.Linear(previous, width), nn.LayerNorm(width), nn.ReLU(inplace=True)]
            if dropout:  # [OURS] the repo has no dropout; a tuning knob after each hidden ReLU
                layers.append(nn.Dropout(dropout))
            previous = width
        layers += [nn.Linear(previous, 1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)
        if init == "paper":
            # Repo quirk (B5.1): every Linear weight ~ N(1.0, 0.02), biases 0; LayerNorms keep defaults.
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, mean=1.0, std=0.02)
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        del test  # no sequences across spectra: a test batch is like any other (hed_blocks)
        return self.net(x)


@register_model("fcnn_1d", kind="classifier")
def fcnn_1d(
    *,
    num_classes: int = 1,
    length: int = 4023,
    widths: str = "256,512,64",
    init: str = "paper",
    dropout: float = 0.0,
) -> FCNN1d:
    """FCNN-1D of the HED comparison (MODELS.md B5.1); 1,204,335 parameters at length 4023.

    ``init="paper"`` reproduces the repo's mean-1 weights; ``"default"`` is PyTorch's init for fair tuning.
    """
    check_binary(num_classes)
    return FCNN1d(length, widths, init, dropout)
