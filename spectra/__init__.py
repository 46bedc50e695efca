"""Worker-side data: synthetic Lorentz spectra, the HED loader, baseline removal, training sets and a
simulated ramp, dataset splits and random masking (numpy, scipy and pybaselines only)."""

from spectra.baseline import als_baseline, remove_baseline
from spectra.confidence import Confidence, classification_confidence
from spectra.errors import DataError
from spectra.hed_data import (
    PAPER_TRANSITION,
    TrainingSetSettings,
    anchor_indices,
    build_training_set,
    parse_range,
    test_set,
)
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
from spectra.ramp import Ramp, RampSettings, simulate_ramp
from spectra.splits import SpectraSplits
from spectra.xy import DEFAULT_RUN_PATTERN, Series, load_xy_folder, read_xy, run_number

__all__ = [
    "Confidence",
    "classification_confidence",
    "DEFAULT_RUN_PATTERN",
    "PAPER_TRANSITION",
    "SCHEMES",
    "ClassDraw",
    "DataError",
    "LorentzSettings",
    "MaskScheme",
    "Peaks",
    "Ramp",
    "RampSettings",
    "Series",
    "SpectraSplits",
    "TrainingSetSettings",
    "als_baseline",
    "anchor_indices",
    "build_training_set",
    "class_peaks",
    "draw_class",
    "draw_masks",
    "generate_lorentz",
    "load_xy_folder",
    "lorentz_curve",
    "mask_spectra",
    "min_max_scale",
    "parse_range",
    "read_xy",
    "remove_baseline",
    "run_number",
    "settings_hash",
    "simulate_ramp",
    "split_sizes",
    "test_set",
]
