"""The HED paper's training and test sets (MODELS.md B2, B3).

The candidate *pool* is every ``pool_step``-th spectrum of the time-ordered series (B2: 0, 10, …, 340).
The training anchors of each class are a range of spectrum indices on that pool, written like a Python
slice ``"start:stop:step"`` (stop excluded): B2 takes pool positions 0–15 and 20–34, i.e. spectra
``"0:151:10"`` (class 0, 16 spectra) and ``"200:341:10"`` (class 1, 15 spectra), leaving out 160–190
near the transition. ``start`` and ``step`` must be multiples of ``pool_step`` so every anchor is on the
pool.

Row order (B2, matters for the LSTM/Transformer reshapes): rows 0…n−1 are the clean anchors, class-0
anchors then class-1 anchors, each in time order; then ``copies`` blocks of n noisy copies in the same
order. Block m (1…copies) adds per-point noise U[0, noise_scale) drawn from its own generator,
``SeedSequence(seed, spawn_key=(m,))`` — block m is the same whatever ``copies`` is. (The repo used
Python's ``random.seed((m − 1)·1000)``; we draw the same distribution with numpy, not the same numbers.)
``noise_mode="aliased"`` lays the blocks out as the binned notebook's bug did (B5.8 ⚠, B8.7; see
:func:`build_training_set`).

Spectra passed in are the baseline-corrected ones (``remove_baseline``), as in the repo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spectra.errors import DataError

PAPER_TRANSITION = 185  # MODELS.md B1: div_num, the 0-based index of the first class-1 spectrum
NOISE_MODES = ("independent", "aliased")  # the intended noisy copies, or the binned notebook's (B5.8 ⚠)


@dataclass(frozen=True)
class TrainingSetSettings:
    """Which spectra are training anchors and how many noisy copies of them (MODELS.md B2)."""

    pool_step: int = 10  # the candidate pool is every pool_step-th spectrum
    class0: str = "0:151:10"  # anchor spectrum indices of class 0, "start:stop:step"
    class1: str = "200:341:10"  # anchor spectrum indices of class 1
    copies: int = 50  # N_sim noisy copies of each anchor
    noise_scale: float = 1 / 6  # noise ~ U[0, noise_scale) per point
    seed: int = 0
    noise_mode: str = "independent"  # one of NOISE_MODES; "aliased" reproduces B5.8's bug

    def __post_init__(self) -> None:
        for field, low in (("pool_step", 1), ("copies", 0), ("seed", 0)):
            value = getattr(self, field)
            _require(_is_int(value) and value >= low, field, f"an integer >= {low}", value)
        scale = self.noise_scale
        _require(np.isfinite(scale) and scale >= 0, "noise_scale", "a number >= 0", scale)
        _require(self.noise_mode in NOISE_MODES, "noise_mode", f"one of {', '.join(NOISE_MODES)}",
                 self.noise_mode)
        ranges = {
            field: parse_range(getattr(self, field), f"TrainingSetSettings.{field}")
            for field in ("class0", "class1")
        }
        for field, picked in ranges.items():
            text = getattr(self, field)
            _require(len(picked) > 0, field, "a range that selects at least one spectrum", text)
            on_pool = picked.start % self.pool_step == 0 and picked.step % self.pool_step == 0
            expected = f"start and step on the pool (multiples of pool_step={self.pool_step})"
            _require(on_pool, field, expected, text)
        shared = sorted(set(ranges["class0"]) & set(ranges["class1"]))
        if shared:
            raise DataError(
                f"TrainingSetSettings.class1: expected no spectrum in both classes, but {self.class0!r} and "
                f"{self.class1!r} share {_few(shared)}"
            )


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _require(ok: bool, field: str, expected: str, got: object) -> None:
    if not ok:
        raise DataError(f"TrainingSetSettings.{field}: expected {expected}, got {got!r}")


def _few(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    return f"spectra {shown}" + (f" (+{len(indices) - 5} more)" if len(indices) > 5 else "")


def parse_range(text: str, what: str = "range") -> range:
    """Spectrum indices of ``"start:stop:step"`` (stop excluded, like a slice; all three non-negative
    integers, step >= 1)."""
    parts = text.split(":") if isinstance(text, str) else []
    try:
        start, stop, step = (int(part) for part in parts)
    except ValueError:
        start = stop = step = -1
    if len(parts) != 3 or start < 0 or stop < 0 or step < 1:
        raise DataError(f"{what}: expected start:stop:step (integers >= 0, step >= 1), got {text!r}")
    return range(start, stop, step)


def anchor_indices(settings: TrainingSetSettings, spectra: int) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum indices (int64) of the class-0 and class-1 anchors of a series of ``spectra`` spectra."""
    found = []
    for field in ("class0", "class1"):
        picked = parse_range(getattr(settings, field), f"TrainingSetSettings.{field}")
        if picked[-1] >= spectra:
            raise DataError(
                f"TrainingSetSettings.{field}: {getattr(settings, field)!r} reaches spectrum {picked[-1]}, "
                f"but the series has {spectra} spectra (0..{spectra - 1})"
            )
        found.append(np.asarray(picked, dtype=np.int64))
    return found[0], found[1]


def _check_spectra(spectra: np.ndarray) -> np.ndarray:
    x = np.asarray(spectra)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise DataError(f"spectra: expected an array [N, L], got shape {list(x.shape)}")
    return x


def build_training_set(spectra: np.ndarray, settings: TrainingSetSettings) -> tuple[np.ndarray, np.ndarray]:
    """Training spectra x float32 [(copies+1)·n, L] and labels y float32 [(copies+1)·n] (MODELS.md B2).

    With N = ``copies``, the x rows are N + 1 blocks of the n anchors O. Let u_k be the noise of copy k
    (k = 0…N−1), drawn by block k+1's generator (module docstring). ``noise_mode``:

    * ``"independent"`` (intended): [O, O+u_0, O+u_1, …, O+u_{N−1}];
    * ``"aliased"`` (the binned notebook, B5.8 ⚠): copy 0's noise lands on the originals in place and
      every later copy is made from them, so [O+u_0, O+u_0, O+u_0+u_1, …, O+u_0+u_{N−1}]: block 0 and
      block 1 are both O+u_0, block m ≥ 2 is O+u_0+u_{m−1}, and no clean anchor is left (for N ≥ 1;
      with N = 0 nothing is drawn and the one block is O).
    """
    x = _check_spectra(spectra)
    idx0, idx1 = anchor_indices(settings, x.shape[0])
    clean = x[np.concatenate([idx0, idx1])].astype(np.float64)
    labels = np.concatenate([np.zeros(len(idx0)), np.ones(len(idx1))]).astype(np.float32)

    noise = (_copy_noise(settings, m, clean.shape) for m in range(1, settings.copies + 1))
    if settings.noise_mode == "aliased" and settings.copies:
        base = clean + next(noise)  # the overwritten originals: every block starts from them
        blocks = [base, base, *(base + u for u in noise)]
    else:
        blocks = [clean, *(clean + u for u in noise)]
    return np.concatenate(blocks).astype(np.float32), np.tile(labels, settings.copies + 1)


def _copy_noise(settings: TrainingSetSettings, block: int, shape: tuple[int, ...]) -> np.ndarray:
    """U[0, noise_scale) noise of noisy block ``block`` (1…copies), from its own generator."""
    rng = np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=(block,)))
    return rng.random(shape) * settings.noise_scale


def test_set(spectra: np.ndarray, transition: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """All spectra in time order (float32 [N, L], MODELS.md B3) and, when the transition is known, labels
    float32 [N]: 0 before ``transition`` (the first class-1 index), 1 from it on; else None."""
    x = _check_spectra(spectra).astype(np.float32)
    if transition is None:
        return x, None
    n = x.shape[0]
    if not _is_int(transition) or not 0 < transition < n:
        raise DataError(
            f"transition: expected an integer in 1..{n - 1} (first class-1 spectrum), got {transition!r}"
        )
    return x, (np.arange(n) >= transition).astype(np.float32)


test_set.__test__ = False  # a data function, not a pytest test, when imported into a test module
