"""Convolutional models of the HED comparison: the Appendix-C CNN (MODELS.md B5.2) and the multi-scale
ResNet "MSResNet" (B5.3). Both begin with a learnable LayerNorm over each spectrum.
"""

from __future__ import annotations

import torch
from torch import nn

from .hed_blocks import INITS, InputNorm, check_binary, check_choice, dry_length, parse_ints
from .registry import register_model


class HedCNN(nn.Module):
    """CNN of paper Appendix C (B5.2): LayerNorm(length) -> per block [Conv1d(no padding) -> BN -> ReLU
    -> MaxPool1d(2)] -> flatten -> LayerNorm -> Linear(-> 1) -> Sigmoid. 23,307 parameters at 4023."""

    output = "sigmoid"

    def __init__(
        self, length: int, channels: str, kernels: str, strides: str, dropout: float, init: str
    ) -> None:
        super().__init__()
        check_choice("init", init, INITS)
        widths = parse_ints("channels", channels)
        blocks: list[nn.Module] = []
        previous = 1
        sizes = parse_ints("kernels", kernels, len(widths))
        steps = parse_ints("strides", strides, len(widths))
        for width, kernel, stride in zip(widths, sizes, steps, strict=True):
            blocks += [
                nn.Conv1d(previous, width, kernel, stride=stride),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(2),
            ]
            previous = width
        self.norm = InputNorm(length)
        self.features = nn.Sequential(*blocks)
        flat = previous * dry_length(self.features, 1, length)  # 4 x 124 = 496 at length 4023
        self.head = nn.Sequential(
            nn.LayerNorm(flat),
            nn.Dropout(dropout),  # [OURS] the repo has none (p = 0 is the identity)
            nn.Linear(flat, 1),
            nn.Sigmoid(),
        )
        if init == "paper":  # repo: Conv1d and Linear weights ~ N(0, 0.05), biases PyTorch's default
            for module in self.modules():
                if isinstance(module, (nn.Conv1d, nn.Linear)):
                    nn.init.normal_(module.weight, mean=0.0, std=0.05)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        del test  # no sequences across spectra: a test batch is like any other (hed_blocks)
        return self.head(self.features(self.norm(x).unsqueeze(1)).flatten(1))


class ResidualBlock(nn.Module):
    """BasicBlock of B5.3: Conv1d(k, stride, padding 1) -> BN -> ReLU -> Conv1d(k, padding 1) -> BN,
    plus a 1x1 strided conv + BN shortcut. With padding 1 a kernel > 3 makes the main path shorter
    than the shortcut; the shortcut then loses its *last* elements (repo). Convs have no bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(out_channels, out_channels, kernel, padding=1, bias=False),
            nn.BatchNorm1d(out_channels),
        )
        self.shortcut = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm1d(out_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.main(x)
        return torch.relu(out + self.shortcut(x)[..., : out.shape[-1]])


class MSResNet(nn.Module):
    """Multi-scale ResNet (B5.3): LayerNorm(length) -> stem -> one stream of residual blocks per kernel
    (each block stride 2, one per entry of ``planes``) -> AvgPool1d(stride 1) sized so every stream ends
    at the same length -> element-wise sum -> flatten -> LayerNorm -> Linear(-> 1) -> Sigmoid.

    At length 4023 the streams end at 126/121/116 and pool by 16/11/6 to 8 x 111 (B5.3). For other
    lengths the shortest stream pools by ``pool`` (the repo's 6) and the others by whatever brings them
    to the same length [OURS: the repo hard-codes 16/11/6].
    """

    output = "sigmoid"

    def __init__(
        self, length: int, planes: str, kernels: str, stem: int, pool: int, keep_unused_linear: bool
    ) -> None:
        super().__init__()
        widths = parse_ints("planes", planes)
        sizes = parse_ints("kernels", kernels)
        if min(sizes) < 3:
            raise ValueError(f"kernels: every kernel must be >= 3 (the convs pad by 1), got {kernels!r}")
        if pool < 1:
            raise ValueError(f"pool must be >= 1, got {pool}")
        self.norm = InputNorm(length)
        self.stem = nn.Sequential(
            nn.Conv1d(1, stem, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm1d(stem),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(5, stride=2, padding=1),
        )
        stem_length = dry_length(self.stem, 1, length)  # 1005 at length 4023
        streams = []
        for kernel in sizes:
            blocks, previous = [], stem
            for width in widths:
                blocks.append(ResidualBlock(previous, width, kernel, stride=2))
                previous = width
            streams.append(nn.Sequential(*blocks))
        ends = [dry_length(stream, stem, stem_length) for stream in streams]
        fused = min(ends) - pool + 1  # 116 - 6 + 1 = 111 at length 4023
        if fused < 1:
            raise ValueError(
                f"length={length} is too short: the streams end at lengths {ends}, shorter than pool={pool}"
            )
        for stream, end in zip(streams, ends, strict=True):
            stream.append(nn.AvgPool1d(end - fused + 1, stride=1))
        self.streams = nn.ModuleList(streams)
        flat = widths[-1] * fused  # 888 at length 4023
        self.head = nn.Sequential(nn.LayerNorm(flat), nn.Linear(flat, 1), nn.Sigmoid())
        if keep_unused_linear:
            # Repo quirk (B5.3): Linear(4023 -> 512) is owned but never called; 2,060,288 of the
            # 2,354,535 counted parameters. Kept only for parameter-count parity.
            self.unused_linear = nn.Linear(length, 512)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        del test  # no sequences across spectra: a test batch is like any other (hed_blocks)
        x = self.stem(self.norm(x).unsqueeze(1))
        fused = sum(stream(x) for stream in self.streams)  # element-wise sum, not concatenation
        return self.head(fused.flatten(1))  # the repo also returns the fused features; we do not


@register_model("cnn", kind="classifier")
def cnn(
    *,
    num_classes: int = 1,
    length: int = 4023,
    channels: str = "64,64,4",
    kernels: str = "5,3,3",
    strides: str = "2,2,1",
    dropout: float = 0.0,
    init: str = "paper",
) -> HedCNN:
    """CNN of the HED comparison, Appendix-C version (MODELS.md B5.2); 23,307 parameters at length 4023.

    ``init="paper"``: Conv1d/Linear weights ~ N(0, 0.05) as in the repo; ``"default"``: PyTorch's init.
    """
    check_binary(num_classes)
    return HedCNN(length, channels, kernels, strides, dropout, init)


@register_model("msresnet", kind="classifier")
def msresnet(
    *,
    num_classes: int = 1,
    length: int = 4023,
    planes: str = "64,64,8",
    kernels: str = "3,5,7",
    stem: int = 64,
    pool: int = 6,
    keep_unused_linear: bool = True,
) -> MSResNet:
    """Multi-scale ResNet of the HED comparison (MODELS.md B5.3); 2,354,535 parameters at length 4023
    as the paper counts them, 294,247 without the dead ``Linear(4023 -> 512)``
    (``keep_unused_linear=False``). PyTorch's default init (repo)."""
    check_binary(num_classes)
    return MSResNet(length, planes, kernels, stem, pool, keep_unused_linear)
