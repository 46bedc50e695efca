"""Pieces shared by the HED spectra models (MODELS.md part B): option checks, the input LayerNorm, the
sinusoidal position encoding, the residual feed-forward module and the row-major "paper" sequences.

Every HED model is a binary classifier: its last layer is Linear(-> 1) -> Sigmoid (B4), so its
``output`` is ``"sigmoid"`` and it returns ``(batch, 1)`` probabilities. Every HED model's forward also
takes the keyword ``test`` (:func:`uses_paper_layout`): ``model(x_test, test=True)`` marks a test batch
even in train mode (B3: the repo tests before ``model.eval()``). Only the models with ``sequence="paper"``
(lstm, transformer, sct_attention) treat a test batch differently; the others ignore it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

INITS = ("paper", "default")  # "paper": the repo's own init (a quirk where noted); "default": PyTorch's
SEQUENCES = ("per_spectrum", "paper")  # how a batch becomes sequences (B5.4, B5.5, B5.7)


def check_binary(num_classes: int) -> None:
    """The HED models are binary: one sigmoid unit (B4); any other ``num_classes`` is a mistake."""
    if num_classes != 1:
        raise ValueError(
            f"num_classes must be 1, got {num_classes}: the HED models are binary classifiers "
            "with one sigmoid output (MODELS.md B4)"
        )


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def parse_ints(name: str, text: str, count: int | None = None) -> list[int]:
    """Parse an option such as ``widths="256,512,64"`` into positive ints; raise ValueError naming it."""
    try:
        values = [int(token) for token in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1 or (count is not None and len(values) != count):
        size = f"{count} " if count is not None else ""
        raise ValueError(f"{name}: expected {size}comma-separated positive integers, got {text!r}")
    return values


def check_spectra(x: torch.Tensor, length: int) -> None:
    if x.dim() != 2 or x.shape[-1] != length:
        raise ValueError(f"expected input of shape (batch, {length}), got {tuple(x.shape)}")


def dry_length(module: nn.Module, channels: int, length: int) -> int:
    """Output length of ``module`` for one input of ``(channels, length)``, by a dry forward in eval
    mode (so BatchNorm statistics are not touched); ValueError if ``length`` is too short for it."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module(torch.zeros(1, channels, length)).shape[-1]
    except RuntimeError as error:  # a conv or pool got an empty input
        raise ValueError(f"length={length} is too short for these layers: {error}") from None
    finally:
        module.train(was_training)


class InputNorm(nn.LayerNorm):
    """Learnable LayerNorm(length) over each spectrum, after checking the input is (batch, length).
    Most 1-D models begin with it (B1: no other normalisation in the data pipeline)."""

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_spectra(x, self.length)
        return super().forward(x)


def sinusoidal_encoding(positions: int, d_model: int, like: torch.Tensor) -> torch.Tensor:
    """The standard sin/cos table (base 10000), ``(positions, d_model)``, on ``like``'s device/dtype:
    even features sin(p / 10000^(2i/d)), odd features cos of the same (B5.5). Computed for any number
    of positions (the repo's table stops at 5000)."""
    position = torch.arange(positions, device=like.device, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, d_model, 2, device=like.device) * (-math.log(10000.0) / d_model))
    table = torch.zeros(positions, d_model, device=like.device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: d_model // 2])
    return table.to(like.dtype)


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding to a sequence-first ``(sequence, batch, d)`` tensor; no parameters,
    no sqrt(d) scaling, no dropout (B5.5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + sinusoidal_encoding(x.shape[0], x.shape[-1], x).unsqueeze(1)


class ResidualFeedForward(nn.Module):
    """h = norm1(x); out = norm2(h + Linear(ff -> d)(ReLU(Linear(d -> ff)(h)))) (B5.6 step 8)."""

    def __init__(self, d_model: int, ff: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, ff)
        self.linear2 = nn.Linear(ff, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        return self.norm2(h + self.linear2(torch.relu(self.linear1(h))))


def fold_rows(x: torch.Tensor, width: int, option: str) -> torch.Tensor:
    """The repo's training reshape: ``(rows, d)`` -> ``(rows // width, width, d)``, plain row-major, so
    entry ``[a, b]`` is row ``a * width + b`` (B5.4: X2 1581 rows -> (31, 51)). ``option`` names the
    model option holding ``width``, for the error."""
    rows = x.shape[0]
    if rows % width:
        raise ValueError(
            f'sequence="paper" reshapes a training batch of rows into (rows // {option}, {option}): '
            f"{rows} rows are not divisible by {option}={width} (the paper's 1581 = 31 x 51)"
        )
    return x.reshape(rows // width, width, *x.shape[1:])


def uses_paper_layout(module: nn.Module, sequence: str, test: bool | None) -> bool:
    """True if this forward builds the paper's training sequences: ``sequence == "paper"`` and the
    batch is a training batch. ``test=None`` means "a test batch iff the module is in eval mode"; pass
    ``test=True`` to run the test layout in train mode (B3: the repo tests before ``model.eval()``)."""
    is_test = (not module.training) if test is None else test
    return sequence == "paper" and not is_test
