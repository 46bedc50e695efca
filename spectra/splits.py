"""Train / validation / test arrays of one spectra dataset, as every dataset loader returns them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SpectraSplits:
    """Spectra ``x_*`` (float32, [N, length]) and integer labels ``y_*`` (int64, [N]) of the three splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        # Catch a mismatched loader here rather than as a shape error deep inside a training loop.
        length = self.x_train.shape[-1]
        for name in ("train", "val", "test"):
            x, y = getattr(self, f"x_{name}"), getattr(self, f"y_{name}")
            if x.ndim != 2 or x.shape[1] != length:
                raise ValueError(f"x_{name}: expected shape [N, {length}], got {list(x.shape)}")
            if y.shape != (x.shape[0],):
                raise ValueError(f"y_{name}: expected shape [{x.shape[0]}], got {list(y.shape)}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise ValueError(f"x_{name}/y_{name}: expected float32/int64, got {x.dtype}/{y.dtype}")

    @property
    def length(self) -> int:
        """Number of points per spectrum."""
        return int(self.x_train.shape[1])
