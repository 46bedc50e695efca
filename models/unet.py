"""TeaNet's 1-D U-Net that reconstructs randomly masked spectra (TeaNet repo unet.py, MODELS.md A3).

Encoder: ``inc`` then ``depth`` down stages (max-pool by 2, then a ConvStack doubling the channels).
Decoder: ``depth`` up stages (transposed conv halving channels and doubling length, right-zero-pad to
the skip's length, concat [skip, up], ConvStack). A 1x1 conv maps to one channel; the output is linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_model


class ConvStack(nn.Sequential):
    """``width`` x [Conv1d(kernel, 'same' padding) -> BatchNorm1d -> ReLU]; the first conv maps in -> out."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, width: int) -> None:
        layers: list[nn.Module] = []
        for i in range(width):
            layers += [
                nn.Conv1d(in_channels if i == 0 else out_channels, out_channels, kernel, padding=kernel // 2),
                nn.BatchNorm1d(out_channels),
                nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class Up(nn.Module):
    """Transposed conv (c -> c/2, length x2), right-zero-pad to the skip, concat [skip, up], ConvStack."""

    def __init__(self, channels: int, kernel: int, width: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(channels, channels // 2, kernel_size=2, stride=2)
        self.conv = ConvStack(channels, channels // 2, kernel, width)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        # A pooled odd length lost its last point; pad on the right so lengths not divisible by
        # 2**depth still line up with the skip (as the repo does with ZeroPad2d).
        x = F.pad(x, (0, skip.shape[-1] - x.shape[-1]))
        return self.conv(torch.cat([skip, x], dim=1))


class UNet1d(nn.Module):
    """1-D U-Net reconstructor: (batch, length) -> (batch, length), MODELS.md A3."""

    output = "spectrum"

    def __init__(
        self,
        length: int = 1024,
        depth: int = 5,
        width: int = 3,
        base_channels: int = 16,
        kernel: int = 9,
        keep_unused_linear: bool = False,
    ) -> None:
        super().__init__()
        if depth < 1 or width < 1 or base_channels < 1:
            raise ValueError(
                f"depth, width and base_channels must be >= 1, got {depth}, {width}, {base_channels}"
            )
        # An even kernel with padding k//2 lengthens every conv by one, so skips would not line up.
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd integer, got {kernel}")
        self.depth = depth
        self.length = length
        self._check_length(length)

        channels = [base_channels * 2**i for i in range(depth + 1)]
        self.inc = ConvStack(1, channels[0], kernel, width)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool1d(2), ConvStack(channels[i], channels[i + 1], kernel, width))
            for i in range(depth)
        )
        self.ups = nn.ModuleList(Up(channels[i + 1], kernel, width) for i in reversed(range(depth)))
        self.outc = nn.Conv1d(channels[0], 1, kernel_size=1)
        if keep_unused_linear:
            # The repo defines Linear(1024, 50) but never calls it; kept only for parameter-count parity.
            self.unused_linear = nn.Linear(1024, 50)

    def _check_length(self, length: int) -> None:
        if length < 2**self.depth:
            raise ValueError(
                f"length={length} is too short for depth={self.depth}: "
                f"the U-Net pools {self.depth} times, so length must be >= 2**depth = {2**self.depth}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_length(x.shape[-1])
        x = self.inc(x.unsqueeze(1))
        skips = [x]
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x).squeeze(1)


@register_model("teanet_unet", kind="reconstructor")
def teanet_unet(
    *,
    num_classes: int | None = None,
    length: int = 1024,
    depth: int = 5,
    width: int = 3,
    base_channels: int = 16,
    kernel: int = 9,
    keep_unused_linear: bool = False,
) -> UNet1d:
    """TeaNet reconstruction U-Net (MODELS.md A3); 11,367,281 parameters at the defaults.

    ``num_classes`` is accepted for a uniform factory signature and ignored.
    """
    del num_classes
    return UNet1d(length, depth, width, base_channels, kernel, keep_unused_linear)
