"""The config of a HED trial: data (a user's series or the simulated ramp), the model and its options,
training and evaluation, with the paper's quirks as named options (MODELS.md part B).

Quirk options default to the fair choice for tuning; the reproduction grids switch them to the paper's
(`QUIRKS`), and every run records which was used.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import torch

from models.registry import create_model, model_options
from spectra.hed_data import NOISE_MODES, TrainingSetSettings, parse_range
from spectra.neither import DEFAULT_BINS, DEFAULT_FACTOR
from spectra.ramp import RampSettings
from spectra.selection import (
    Segment,
    check_inside,
    crop_mask,
    parse_anchors,
    parse_window,
    segments,
    simulated_grid,
)
from trials.config import ConfigError, Field
from trials.measure import PRECISIONS

HED_MODELS = ("fcnn_1d", "cnn", "msresnet", "lstm", "transformer", "sc_attention", "sct_attention")
MODELS = (*HED_MODELS, "binned_fcnn")

# Epochs of the paper's Table 1 (ResNet: the table's 6, MODELS.md B4) and its learning rates (B4).
PAPER_EPOCHS = {"fcnn_1d": 300, "cnn": 5, "msresnet": 6, "lstm": 25, "transformer": 30,
                "sc_attention": 8, "sct_attention": 5, "binned_fcnn": 550}
PAPER_OPTIMISER = {name: (8e-3, 2e-4) if "attention" in name else (2e-3, 2e-5) for name in MODELS}

# key: (fair default for tuning, the paper's setting for --reproduce)
QUIRKS: dict[str, tuple[Any, Any]] = {
    "eval.batchnorm": ("eval", "train"),  # B3: test predictions with BatchNorm in train mode
    "model.fcnn_1d.init": ("default", "paper"),  # B5.1: Linear weights ~ N(1, 0.02)
    "model.cnn.init": ("default", "paper"),
    "model.sc_attention.init": ("default", "paper"),  # B5.6: N(0, 0.05) weights (later ConvSC class)
    "model.sct_attention.init": ("default", "paper"),
    "model.lstm.sequence": ("per_spectrum", "paper"),  # B5.4: rows reshaped into sequences
    "model.transformer.sequence": ("per_spectrum", "paper"),  # B5.5: attention across spectra
    "model.sct_attention.sequence": ("per_spectrum", "paper"),
    "model.msresnet.keep_unused_linear": (False, True),  # B5.3: the dead Linear(4023→512)
    "model.sc_attention.ffn": ("used", "bypassed"),  # B5.6 step 8: the untrained feed-forward block
    "model.sct_attention.ffn": ("used", "bypassed"),  # B5.7 reuses SC's block
}

_BASE_FIELDS: dict[str, Field] = {
    # Data (MODELS.md B1-B3): a user's folder of .xy/.xye files, or the simulated ramp.
    "data.path": Field("", "folder of .xy/.xye files, or a .7z archive of them as published (read by the "
                       "driver); empty: the simulated ramp"),
    "data.header_lines": Field(-1, "header lines of each file; -1: detect", low=-1, high=10_000),
    "data.transition": Field(-1, "true transition index of a user's series, if known (-1: unknown)",
                             low=-1),
    "data.spectra": Field(349, "simulator: spectra in the time series", low=4, high=100_000),
    "data.points": Field(4023, "simulator: points per spectrum", low=64, high=1_000_000),
    "data.sim_transition": Field(185, "simulator: index of the first high-pressure spectrum", low=1),
    "data.sim_transition2": Field(0, "simulator: first spectrum of a third regime after a second "
                                  "transition (0: none)", low=0),
    "data.seed": Field(0, "simulator seed", low=0),
    # Which part of a real ramp is analysed (issue 11; spectra.selection).
    "data.window": Field("", "the spectra analysed, START:STOP (stop excluded; indices of the whole series, "
                         "which anchors and boundaries keep); empty: the whole series"),
    "data.anchors": Field("", "K >= 2 anchor ranges in time order, a:b:c,d:e:f,...: K-1 transitions, each "
                          "found between its two ranges; replaces data.class0/class1; empty: those two"),
    "data.two_theta": Field("", "crop every spectrum to LO:HI degrees before the baseline (gasket, detector "
                            "edges); empty: every point"),
    "data.baseline": Field(True, "remove an asymmetric-least-squares baseline (B1)"),
    "data.als_lambda": Field(1e5, "ALS smoothness λ", low=0.0, low_open=True),
    "data.als_p": Field(0.002, "ALS asymmetry p", low=0.0, high=1.0, low_open=True, high_open=True),
    "data.als_iterations": Field(10, "ALS iterations", low=1, high=1000),
    "data.pool_step": Field(10, "the training pool: every n-th spectrum (B2)", low=1),
    "data.class0": Field("0:151:10", "class-0 anchors, start:stop:step over spectrum indices"),
    "data.class1": Field("200:341:10", "class-1 anchors, start:stop:step over spectrum indices"),
    "data.copies": Field(50, "noisy copies of each anchor (B2: 50)", low=0, high=10_000),
    "data.noise_scale": Field(1 / 6, "noise ~ U[0, scale) added per point (B2: 1/6)", low=0.0),
    "data.noise_seed": Field(0, "seed of the noisy copies", low=0),
    "data.noise_mode": Field("independent", "independent: the clean anchors plus independent noisy copies; "
                             "aliased: the binned notebook's bug (B5.8, B8.7), noise of copy 0 added to "
                             "every block, no clean anchors left", choices=NOISE_MODES),
    # Model.
    "model.name": Field("cnn", "the classifier", choices=MODELS),
    # Training (B4; binned model B5.8).
    "train.epochs": Field(5, "epochs (paper, Table 1: FCNN 300, CNN 5, ResNet 6, LSTM 25, Transformer 30, "
                          "SC 8, SCT 5; binned: up to 550)", low=1, high=100_000),
    "train.lr": Field(2e-3, "Adam learning rate (paper: 2e-3; attention models 8e-3)",
                      low=0.0, low_open=True),
    "train.weight_decay": Field(2e-5, "Adam weight decay (paper: 2e-5; attention models 2e-4)", low=0.0),
    "train.batch_size": Field(0, "0: full batch, as in the paper; else mini-batches", low=0),
    "train.stop_loss": Field(0.15, "binned model: stop when the loss falls below (B5.8)", low=0.0),
    "train.stop_accuracy": Field(0.99, "binned model: stop when train accuracy exceeds (B5.8)",
                                 low=0.0, high=1.0),
    "train.seed": Field(12345, "seed of weights and batch order (paper: 12345)", low=0),
    "train.device": Field("auto", "where to train", choices=("auto", "cpu", "cuda")),
    "train.precision": Field("fp32", "fp32, or bf16: forward passes under torch.autocast to bfloat16 "
                             "(mixed precision; losses in fp32)", choices=PRECISIONS),
    "eval.every": Field(1, "evaluate the series every n epochs (and at the last); the binned model's "
                        "test set is 349·N2 rows, costlier than an epoch", low=1, high=100_000),
    "eval.batchnorm": Field("eval", "BatchNorm at test: eval (fair) or train, the paper's quirk (B3)",
                            choices=("eval", "train")),
    # [OURS] spectra of neither class (spectra.neither): far from every mixture of a pair's anchors.
    "eval.neither_factor": Field(DEFAULT_FACTOR, "a spectrum is of neither class beyond this many times the "
                                 "anchors' own leave-one-out distance", low=0.0, low_open=True),
    "eval.neither_bins": Field(DEFAULT_BINS, "spectra are compared summed into this many bins of 2θ (peaks "
                               "drifting within a bin, and point noise, do not count)", low=2, high=100_000),
}


def _model_fields() -> dict[str, Field]:
    """``model.<name>.<option>`` for every option of every HED model, defaults from the registry
    (fair defaults for the quirk options)."""
    fields = {}
    for name in MODELS:
        for option, default in model_options(name).items():
            if option in ("num_classes", "length"):
                continue
            key = f"model.{name}.{option}"
            value = QUIRKS[key][0] if key in QUIRKS else default
            choices = tuple(dict.fromkeys(QUIRKS[key])) if key in QUIRKS else None
            fields[key] = Field(value, f"{name} option {option}", choices=choices)
    return fields


FIELDS: dict[str, Field] = {**_BASE_FIELDS, **_model_fields()}


def model_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen model's options, as create_model takes them."""
    prefix = f"model.{config['model.name']}."
    return {key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)}


def paper_settings(name: str) -> dict[str, Any]:
    """Every quirk at the paper's setting, and the paper's optimiser and epochs for ``name``."""
    lr, weight_decay = PAPER_OPTIMISER[name]
    quirks = {key: paper for key, (_, paper) in QUIRKS.items()
              if key == "eval.batchnorm" or key.startswith(f"model.{name}.")}
    return {"model.name": name, "train.lr": lr, "train.weight_decay": weight_decay,
            "train.epochs": PAPER_EPOCHS[name], **quirks}


def ramp_settings(config: Mapping[str, Any]) -> RampSettings:
    """The simulated ramp a config names (when data.path is empty)."""
    return RampSettings(spectra=config["data.spectra"], points=config["data.points"],
                        transition=config["data.sim_transition"],
                        second_transition=config["data.sim_transition2"], seed=config["data.seed"])


def training_settings(config: Mapping[str, Any], segment: Segment | None = None) -> TrainingSetSettings:
    """Anchors and noisy copies of the training set (B2): of ``segment``'s pair, else data.class0/1."""
    class0, class1 = config["data.class0"], config["data.class1"]
    if segment is not None:
        class0, class1 = segment.as_range("class0"), segment.as_range("class1")
    return TrainingSetSettings(pool_step=config["data.pool_step"], class0=class0, class1=class1,
                               copies=config["data.copies"], noise_scale=config["data.noise_scale"],
                               seed=config["data.noise_seed"], noise_mode=config["data.noise_mode"])


def anchor_ranges(config: Mapping[str, Any]) -> list[range]:
    """The K anchor ranges in time order: data.anchors when given, else data.class0 and data.class1."""
    if config["data.anchors"]:
        return parse_anchors(config["data.anchors"], "config key 'data.anchors'")
    return [parse_range(config[key], f"config key '{key}'") for key in ("data.class0", "data.class1")]


def series_segments(config: Mapping[str, Any], spectra: int) -> list[Segment]:
    """The K − 1 pairs of a series of ``spectra`` spectra, each with the spectra it is classified over
    (spectra.selection); anchors outside the window are an error."""
    window = parse_window(config["data.window"], spectra, "config key 'data.window'")
    ranges = anchor_ranges(config)
    names = [f"config key '{key}'" for key in ("data.class0", "data.class1")]
    if config["data.anchors"]:
        names = [f"config key 'data.anchors' (range {k})" for k in range(1, len(ranges) + 1)]
    check_inside(ranges, window, spectra, names)
    return segments(ranges, window)


def training_rows(config: Mapping[str, Any]) -> int:
    """Rows of the largest pair's training set: its anchors and their noisy copies (B2: 31 × 51 = 1581)."""
    return max(pair_rows(config))


def pair_rows(config: Mapping[str, Any]) -> list[int]:
    """Training rows of each pair."""
    ranges = anchor_ranges(config)
    pairs = zip(ranges[:-1], ranges[1:], strict=True)
    return [(len(a) + len(b)) * (config["data.copies"] + 1) for a, b in pairs]


def simulated_points(config: Mapping[str, Any]) -> int:
    """Points per spectrum of the simulated ramp after the 2θ crop."""
    settings = RampSettings()
    return cropped_points(config, simulated_grid(config["data.points"], settings.two_theta_low,
                                                 settings.two_theta_high))


def cropped_points(config: Mapping[str, Any], two_theta: np.ndarray) -> int:
    """Points per spectrum on the grid ``two_theta`` after the data.two_theta crop: what a model takes."""
    keep = crop_mask(two_theta, config["data.two_theta"], "config key 'data.two_theta'")
    return len(two_theta) if keep is None else int(keep.sum())


def known_transitions(config: Mapping[str, Any]) -> tuple[int, ...]:
    """The true transitions of the series, where known: the simulator's, or data.transition of a user's."""
    if not config["data.path"]:
        second = config["data.sim_transition2"]
        return (config["data.sim_transition"], *((second,) if second else ()))
    return (config["data.transition"],) if config["data.transition"] >= 0 else ()


def check_config(config: Mapping[str, Any], unset_class_ranges: Collection[tuple[str, str]] = ()) -> None:
    """Rules across keys, before any data is made or read; raises ConfigError naming the key.
    ``unset_class_ranges``: the (data.class0, data.class1) pairs a study fills in by itself (defaults,
    budgets): with data.anchors, any other pair was given by the user too, and that is an error."""
    sequence = config.get(f"model.{config['model.name']}.sequence")
    if sequence == "paper" and config["train.batch_size"]:
        raise ConfigError(f"config key 'model.{config['model.name']}.sequence': the paper's sequences "
                          "are built from the full training batch; expected train.batch_size=0")
    if not config["data.path"] and config["data.sim_transition"] >= config["data.spectra"]:
        raise ConfigError("config key 'data.sim_transition': expected less than data.spectra "
                          f"({config['data.spectra']}), got {config['data.sim_transition']}")
    classes = (config["data.class0"], config["data.class1"])
    if config["data.anchors"] and unset_class_ranges and classes not in set(unset_class_ranges):
        raise ConfigError(f"config key 'data.anchors': given together with data.class0={classes[0]} and "
                          f"data.class1={classes[1]}; expected one or the other (data.anchors replaces them)")
    _check_data(config)
    _check_paper_layout(config)
    _check_model_builds(config)


def _check_paper_layout(config: Mapping[str, Any]) -> None:
    """The paper's sequences reshape the (copies + 1) · anchors training rows into blocks of 51 = 50 + 1
    (B5.4, B5.5): the block must divide every pair's rows."""
    name = config["model.name"]
    block_key = {"lstm": "sequence_length", "transformer": "columns", "sct_attention": "columns"}.get(name)
    if block_key is None or config[f"model.{name}.sequence"] != "paper":
        return
    block = config[f"model.{name}.{block_key}"]
    for rows in pair_rows(config):
        if rows % block:
            expected = config["data.copies"] + 1
            raise ConfigError(f"config key 'model.{name}.{block_key}': the paper's layout needs it to divide "
                              f"the {rows} training rows; expected data.copies + 1 = {expected}, got {block}")


def _check_data(config: Mapping[str, Any]) -> None:
    """Anchors, window and 2θ range (and, for the simulator, the series they fall in) checked by the
    data code itself; its messages name a field whose config key is the same name under ``data.``."""
    try:
        ranges = anchor_ranges(config)
        for before, after in zip(ranges[:-1], ranges[1:], strict=True):  # each pair: pool, empty, shared
            training_settings(config, Segment(before, after, 0, 0))
        if not config["data.path"]:  # the simulator's size is known before any data: window and anchors
            series_segments(config, config["data.spectra"])
            ramp_settings(config)
            simulated_points(config)
    except ValueError as error:
        message = re.sub(r"^(TrainingSetSettings|RampSettings)\.(\w+)", r"config key 'data.\2'", str(error))
        message = message.replace("'data.transition'", "'data.sim_transition'")
        raise ConfigError(message.replace("'data.second_transition'", "'data.sim_transition2'")) from None


def _check_model_builds(config: Mapping[str, Any]) -> None:
    # A user's series has its real length checked when the driver reads it; the paper's stands in here.
    check_model(config, 4023 if config["data.path"] else simulated_points(config))


def check_model(config: Mapping[str, Any], length: int) -> None:
    """Build the model on the meta device: bad options (bins, heads, layer strings) fail here, free."""
    try:
        with torch.device("meta"):
            create_model(config["model.name"], num_classes=1, length=length, **model_config(config))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"config key 'model.{config['model.name']}.*': {error}") from None
