"""Worker-side data: synthetic Lorentz spectra, dataset splits and random masking (numpy only)."""

from spectra.lorentz import (
    ClassDraw,
    LorentzSettings,
    Peaks,
    class_peaks,
    draw_class,
    generate_lorentz,
    lorentz_curve,
    min_max_scale,
    settings_hash,
    split_sizes,
)
from spectra.masks import SCHEMES, MaskScheme, draw_masks, mask_spectra
from spectra.splits import SpectraSplits

__all__ = [
    "SCHEMES",
    "ClassDraw",
    "LorentzSettings",
    "MaskScheme",
    "Peaks",
    "SpectraSplits",
    "class_peaks",
    "draw_class",
    "draw_masks",
    "generate_lorentz",
    "lorentz_curve",
    "mask_spectra",
    "min_max_scale",
    "settings_hash",
    "split_sizes",
]
