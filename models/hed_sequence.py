"""Sequence models of the HED comparison: the LSTM "MultiLen" (MODELS.md B5.4) and the Transformer
(B5.5). Both embed each spectrum to one vector, run a sequence model over vectors and apply a
per-position head.

What is a "sequence" is an option (``sequence``):

* ``"per_spectrum"`` (default, fair): every spectrum is its own length-1 sequence.
* ``"paper"`` (reproduction, B5.4/B5.5 ⚠): a *training* batch is reshaped row-major to
  ``(rows // 51, 51)``, mixing spectra and noisy copies in one sequence exactly as the repo does;
  outputs come back in row order. A *test* batch is handled like the repo's (349, 1, 4023) input:
  the LSTM reads it as length-1 sequences, the Transformer as **one sequence of the whole test batch**
  (transductive). A batch is a test batch when the module is in eval mode, or when ``forward`` is called
  with ``test=True`` (B3: the repo tests in train mode).
"""

from __future__ import annotations

import torch
from torch import nn

from .hed_blocks import (
    SEQUENCES,
    InputNorm,
    PositionalEncoding,
    check_binary,
    check_choice,
    fold_rows,
    uses_paper_layout,
)
from .registry import register_model


def embedding(length: int, width: int) -> nn.Sequential:
    """LayerNorm(length) -> Linear(length -> width) -> LayerNorm(width) -> ReLU (B5.4, B5.5)."""
    return nn.Sequential(
        InputNorm(length), nn.Linear(length, width), nn.LayerNorm(width), nn.ReLU(inplace=True)
    )


def xavier_init(model: nn.Module) -> None:
    """Repo init (B5.4, B5.5): xavier_uniform on every nn.Linear weight, biases 0.01 (this includes
    the attention out-projection, an nn.Linear; the attention in-projection keeps its default)."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.constant_(module.bias, 0.01)


class HedLSTM(nn.Module):
    """LSTM "MultiLen" (B5.4): embedding -> nn.LSTM (batch-first, zero initial state, no dropout) ->
    at every time step LayerNorm -> Linear(-> 1) -> Sigmoid. 6,273,391 parameters at length 4023."""

    output = "sigmoid"

    def __init__(
        self, length: int, embed: int, hidden: int, layers: int, sequence: str, sequence_length: int
    ) -> None:
        super().__init__()
        check_choice("sequence", sequence, SEQUENCES)
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        self.sequence = sequence
        self.sequence_length = sequence_length  # B5.4: 51 time steps per training sequence
        self.embed = embedding(length, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, 1), nn.Sigmoid())
        xavier_init(self)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        e = self.embed(x)
        if uses_paper_layout(self, self.sequence, test):
            seq = fold_rows(e, self.sequence_length, "sequence_length")  # (rows // 51 batch, 51 time)
        else:
            seq = e.unsqueeze(1)  # (rows batch, 1 time): the repo's test layout (349, 1, 4023)
        return self.head(self.lstm(seq)[0]).reshape(-1, 1)


class HedTransformer(nn.Module):
    """Transformer (B5.5): embedding -> sinusoidal position encoding -> post-norm TransformerEncoder
    (sequence-first, ReLU, no mask) -> per position Linear(-> 1) -> Sigmoid. 1,830,511 parameters at
    length 4023."""

    output = "sigmoid"

    def __init__(
        self,
        length: int,
        d_model: int,
        heads: int,
        layers: int,
        ff: int,
        dropout: float,
        sequence: str,
        columns: int,
    ) -> None:
        super().__init__()
        check_choice("sequence", sequence, SEQUENCES)
        if columns < 1:
            raise ValueError(f"columns must be >= 1, got {columns}")
        self.sequence = sequence
        self.columns = columns
        self.embed = embedding(length, d_model)
        self.position = PositionalEncoding()
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout)  # batch_first=False, as the repo
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(d_model, 1), nn.Sigmoid())
        xavier_init(self)

    def forward(self, x: torch.Tensor, *, test: bool | None = None) -> torch.Tensor:
        e = self.embed(x)
        if uses_paper_layout(self, self.sequence, test):
            # (rows // 51, 51) read sequence-first: 51 sequences, each of the rows a*51 + b (B5.5).
            seq = fold_rows(e, self.columns, "columns")
        elif self.sequence == "paper":
            seq = e.unsqueeze(1)  # test: ONE sequence of the whole batch, positions 0..rows-1 (B5.5 ⚠)
        else:
            seq = e.unsqueeze(0)  # per spectrum: rows sequences of length 1
        return self.head(self.encoder(self.position(seq))).reshape(-1, 1)


@register_model("lstm", kind="classifier")
def lstm(
    *,
    num_classes: int = 1,
    length: int = 4023,
    embed: int = 512,
    hidden: int = 512,
    layers: int = 2,
    sequence: str = "per_spectrum",
    sequence_length: int = 51,
) -> HedLSTM:
    """LSTM "MultiLen" of the HED comparison (MODELS.md B5.4); 6,273,391 parameters at length 4023.

    ``sequence="paper"`` reshapes a training batch into ``(rows // sequence_length, sequence_length)``
    sequences as the repo does (1581 -> 31 x 51); see the module docstring.
    """
    check_binary(num_classes)
    return HedLSTM(length, embed, hidden, layers, sequence, sequence_length)


@register_model("transformer", kind="classifier")
def transformer(
    *,
    num_classes: int = 1,
    length: int = 4023,
    d_model: int = 256,
    heads: int = 8,
    layers: int = 2,
    ff: int = 256,
    dropout: float = 0.0,
    sequence: str = "per_spectrum",
    columns: int = 51,
) -> HedTransformer:
    """Transformer of the HED comparison (MODELS.md B5.5); 1,830,511 parameters at length 4023.

    ``sequence="paper"``: a training batch is reshaped to ``(rows // columns, columns)`` and read
    sequence-first (attention over ``rows // columns`` spectra, ``columns`` sequences side by side:
    31 x 51 in the repo), and a test batch is one transductive sequence; see the module docstring.
    """
    check_binary(num_classes)
    return HedTransformer(length, d_model, heads, layers, ff, dropout, sequence, columns)
