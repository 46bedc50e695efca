"""Worker-side data: synthetic Lorentz spectra, the HED loader (folders and the published .7z), a user's
labelled spectra in their formats and TeaNet's leave-one-out protocol, baseline removal, training sets, a
simulated ramp, what part of a ramp is analysed and which spectra are of neither class, dataset splits and
random masking (numpy, scipy, pybaselines and py7zr; torch only to read a TeaNet .pth; matplotlib only for
spectra.series_figure, imported where a figure is drawn)."""

from spectra.baseline import als_baseline, remove_baseline
from spectra.confidence import Confidence, classification_confidence
from spectra.errors import DataError
from spectra.formats import FORMATS, load_spectra
from spectra.hed_data import (
    PAPER_TRANSITION,
    TrainingSetSettings,
    anchor_indices,
    build_training_set,
    parse_range,
    test_set,
)
from spectra.labelled import LabelledSpectra
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
from spectra.neither import NeitherClass, neither_class, neither_in_segments
from spectra.protocol import ProtocolPool, leave_one_out, protocol_pool
from spectra.ramp import Ramp, RampSettings, simulate_ramp
from spectra.selection import Segment, crop_mask, parse_anchors, parse_window, segments
from spectra.splits import SpectraSplits
from spectra.xy import DEFAULT_RUN_PATTERN, Series, load_series, load_xy_folder, read_xy, run_number

__all__ = [
    "Confidence",
    "classification_confidence",
    "DEFAULT_RUN_PATTERN",
    "PAPER_TRANSITION",
    "SCHEMES",
    "ClassDraw",
    "DataError",
    "FORMATS",
    "LabelledSpectra",
    "ProtocolPool",
    "LorentzSettings",
    "MaskScheme",
    "NeitherClass",
    "Peaks",
    "Ramp",
    "RampSettings",
    "Segment",
    "Series",
    "SpectraSplits",
    "TrainingSetSettings",
    "als_baseline",
    "anchor_indices",
    "build_training_set",
    "class_peaks",
    "crop_mask",
    "draw_class",
    "draw_masks",
    "generate_lorentz",
    "load_series",
    "leave_one_out",
    "load_spectra",
    "load_xy_folder",
    "lorentz_curve",
    "mask_spectra",
    "min_max_scale",
    "neither_class",
    "neither_in_segments",
    "parse_anchors",
    "parse_range",
    "parse_window",
    "protocol_pool",
    "read_xy",
    "remove_baseline",
    "run_number",
    "segments",
    "settings_hash",
    "simulate_ramp",
    "split_sizes",
    "test_set",
]
