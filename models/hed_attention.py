"""Convolutional attention models of the HED comparison: SC (spatial-channel, MODELS.md B5.6) and SCT
(spatial-channel-temporal, B5.7).

SC is rebuilt from its checkpoint's tensor shapes, with the layer order of the author's later
``ConvSC`` class [OURS-inferred]; SCT from the paper text, which fits its parameter count exactly:
SC 659,525 + temporal Linear/LayerNorm 1,030,656 + MultiheadAttention(256) 263,168 + Conv4/BN 4.
Neither starts with a LayerNorm over the spectrum.

Both end in a residual feed-forward block that the published SC checkpoint shows never trained (B5.6
step 8 ⚠): ``ffn="bypassed"`` keeps its parameters (so the counts match Table 1) but feeds the fused
features straight to fc1, as the published model did; ``"used"`` runs it.
"""

from __future__ import annotations

import torch
from torch import nn

from .hed_blocks import (
    INITS,
    SEQUENCES,
    PositionalEncoding,
    ResidualFeedForward,
    check_binary,
    check_choice,
    check_spectra,
    dry_length,
    fold_rows,
    parse_ints,
    uses_paper_layout,
)
from .registry import register_model

FFN_MODES = ("used", "bypassed")  # B5.6 step 8: the feed-forward block run, or skipped as published


def check_heads(name: str, heads: int, width: int) -> None:
    if heads < 1 or width % heads:
        raise ValueError(f"{name}={heads} must be >= 1 and divide the attention width {width}")


def normal_init(model: nn.Module) -> None:
    """[OURS-inferred from the author's later ConvSC class] Conv1d, Linear (incl. the attention
    out-projection) and BatchNorm weights ~ N(0, 0.05); biases and the attention in-projection keep
    PyTorch's defaults."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear, nn.BatchNorm1d)):
            nn.init.normal_(module.weight, mean=0.0, std=0.05)


class FeedForwardHead(nn.Module):
    """Base of SC and SCT: their ``ffn`` (B5.6 step 8), unless bypassed, then flatten -> ``fc1`` ->
    Sigmoid (step 9). The layers stay attributes of the model, named as in the SC checkpoint."""

    ffn: ResidualFeedForward
    fc1: nn.Linear
    ffn_mode: str

    def head(self, features: torch.Tensor) -> torch.Tensor:
        if self.ffn_mode == "used":
            features = self.ffn(features)
        return torch.sigmoid(self.fc1(features.flatten(1)))


class SCBranch(nn.Module):
    """The SC feature map (B5.6 steps 1-7): (batch, length) -> (batch, 1, embed).

    conv1 Conv1d(1 -> 64, k5, s2) and conv3 Conv1d(64 -> 8, k5), each -> BN -> ReLU -> MaxPool(2);
    E = LayerNorm(Linear(width -> 256)) along the length axis (width 500 at length 4023, found by a
    dry forward); spatial attention S over the 256 positions with the 8 channels as tokens; DANet
    channel attention C = gamma * softmax(rowmax(E E^T) - E E^T) E + E (gamma starts at 0);
    LayerNorm(E + S + C) -> dec_conv3 Conv1d(8 -> 1, k1) -> BN -> ReLU.
    """

    def __init__(self, length: int, channels: str, heads: int, embed: int) -> None:
        super().__init__()
        first, second = parse_ints("channels", channels, 2)
        check_heads("heads", heads, second)
        self.length = length
        self.conv1 = nn.Sequential(
            nn.Conv1d(1, first, 5, stride=2), nn.BatchNorm1d(first), nn.ReLU(inplace=True), nn.MaxPool1d(2)
        )
        self.conv3 = nn.Sequential(
            nn.Conv1d(first, second, 5), nn.BatchNorm1d(second), nn.ReLU(inplace=True), nn.MaxPool1d(2)
        )
        width = dry_length(nn.Sequential(self.conv1, self.conv3), 1, length)  # 500 at length 4023
        self.embedding = nn.Sequential(nn.Linear(width, embed), nn.LayerNorm(embed))
        self.spatial = nn.MultiheadAttention(second, heads)  # embed dim = channels (8), sequence-first
        self.gamma = nn.Parameter(torch.zeros(1))  # channel-attention scale
        self.norm = nn.LayerNorm(embed)
        self.dec_conv3 = nn.Sequential(nn.Conv1d(second, 1, 1), nn.BatchNorm1d(1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spectra(x, self.length)
        e = self.embedding(self.conv3(self.conv1(x.unsqueeze(1))))  # (batch, channels, embed)
        tokens = e.permute(2, 0, 1)  # (embed positions, batch, channels)
        s = self.spatial(tokens, tokens, tokens, need_weights=False)[0].permute(1, 2, 0)
        energy = e @ e.transpose(1, 2)  # (batch, channels, channels)
        attention = torch.softmax(energy.amax(dim=-1, keepdim=True) - energy, dim=-1)
        c = self.gamma * (attention @ e) + e
        return self.dec_conv3(self.norm(e + s + c))  # F = E + S + C: E counted twice, as B5.6 step 6


class SCAttention(FeedForwardHead):
    """Convolutional SC attention (B5.6): SC branch -> residual feed-forward (unless bypassed) ->
    Linear(-> 1) -> Sigmoid. 659,525 parameters at length 4023, with the feed-forward used or not."""

    output = "sigmoid"

    def __init__(self, length: int, channels: str, heads: int, embed: int, ff: int, ffn: str,
                 init: str) -> None:
        super().__init__()
        check_choice("init", init, INITS)
        check_choice("ffn", ffn, FFN_MODES)
        self.ffn_mode = ffn
        self.branch = SCBranch(length, channels, heads, embed)
        self.ffn = ResidualFeedForward(embed, ff)
        self.fc1 = nn.Linear(embed, 1)
        if init == "paper":
            normal_init(self)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        del test  # no sequences across spectra: a test batch is like any other (hed_blocks)
        return self.head(self.branch(x))


class SCTAttention(FeedForwardHead):
    """Convolutional SCT attention (B5.7): the SC branch (lower) plus a temporal branch (upper) that
    attends across spectra, fused by addition -> residual feed-forward (unless bypassed, as SC's) ->
    Linear(-> 1) -> Sigmoid.

    Temporal branch: Linear(length -> 256) -> LayerNorm -> + sinusoidal position -> p + MHA(p) over the
    batch as a sequence -> (batch, 1, 256) -> "Conv4" Conv1d(1 -> 1, k1) -> BN(1), a learned scale.
    The sequence is chosen as for the Transformer (``sequence``; hed_sequence module docstring):
    "per_spectrum" attends over each spectrum alone; "paper" folds a training batch to
    ``(rows // columns, columns)`` read sequence-first and reads a test batch as one sequence.
    1,953,353 parameters at length 4023.
    """

    output = "sigmoid"

    def __init__(
        self,
        length: int,
        channels: str,
        heads: int,
        embed: int,
        ff: int,
        temporal_heads: int,
        sequence: str,
        columns: int,
        ffn: str,
        init: str,
    ) -> None:
        super().__init__()
        check_choice("init", init, INITS)
        check_choice("sequence", sequence, SEQUENCES)
        check_choice("ffn", ffn, FFN_MODES)
        check_heads("temporal_heads", temporal_heads, embed)
        if columns < 1:
            raise ValueError(f"columns must be >= 1, got {columns}")
        self.ffn_mode = ffn
        self.sequence = sequence
        self.columns = columns
        self.branch = SCBranch(length, channels, heads, embed)
        self.temporal_embedding = nn.Sequential(nn.Linear(length, embed), nn.LayerNorm(embed))
        self.position = PositionalEncoding()
        self.temporal = nn.MultiheadAttention(embed, temporal_heads)  # sequence-first
        self.conv4 = nn.Sequential(nn.Conv1d(1, 1, 1), nn.BatchNorm1d(1))
        self.ffn = ResidualFeedForward(embed, ff)
        self.fc1 = nn.Linear(embed, 1)
        if init == "paper":
            normal_init(self)

    def temporal_branch(self, x: torch.Tensor, test: bool | None) -> torch.Tensor:
        t = self.temporal_embedding(x)  # (rows, embed)
        if uses_paper_layout(self, self.sequence, test):
            seq = fold_rows(t, self.columns, "columns")  # (rows // 51, 51 sequences, embed)
        elif self.sequence == "paper":
            seq = t.unsqueeze(1)  # test: one sequence of the whole batch (transductive, as B5.5)
        else:
            seq = t.unsqueeze(0)  # per spectrum: rows sequences of length 1
        p = self.position(seq)
        p = p + self.temporal(p, p, p, need_weights=False)[0]
        return self.conv4(p.reshape(-1, 1, p.shape[-1]))  # back to row order, (rows, 1, embed)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        return self.head(self.branch(x) + self.temporal_branch(x, test))


@register_model("sc_attention", kind="classifier")
def sc_attention(
    *,
    num_classes: int = 1,
    length: int = 4023,
    channels: str = "64,8",
    heads: int = 4,
    embed: int = 256,
    ff: int = 1024,
    ffn: str = "used",
    init: str = "paper",
) -> SCAttention:
    """Convolutional SC attention of the HED comparison (MODELS.md B5.6); 659,525 parameters at length
    4023. ``heads`` (spatial attention over ``channels[-1]``-wide tokens) is [OURS]: 4.
    ``ffn="bypassed"`` skips the feed-forward block, as the published checkpoint did (B5.6 step 8 ⚠)."""
    check_binary(num_classes)
    return SCAttention(length, channels, heads, embed, ff, ffn, init)


@register_model("sct_attention", kind="classifier")
def sct_attention(
    *,
    num_classes: int = 1,
    length: int = 4023,
    channels: str = "64,8",
    heads: int = 4,
    embed: int = 256,
    ff: int = 1024,
    temporal_heads: int = 8,
    sequence: str = "per_spectrum",
    columns: int = 51,
    ffn: str = "used",
    init: str = "paper",
) -> SCTAttention:
    """Convolutional SCT attention of the HED comparison (MODELS.md B5.7); 1,953,353 parameters at
    length 4023. ``sequence="paper"`` attends across the spectra of a batch like the Transformer (B5.5).
    ``heads`` = 4 follows the SC checkpoint, not the paper's h = 2 of width 128 (B5.7 ⚠).
    ``ffn="bypassed"`` skips the feed-forward block, as SC's published checkpoint did (B5.6 step 8 ⚠)."""
    check_binary(num_classes)
    return SCTAttention(length, channels, heads, embed, ff, temporal_heads, sequence, columns, ffn, init)
