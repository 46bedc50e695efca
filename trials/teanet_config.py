"""The config of a TeaNet trial: every key, its paper default, its allowed values (MODELS.md A2-A8).

Defaults are the published settings (the ``paper`` budget); studies' budgets shrink what costs. Keys
marked [OURS] are choices MODELS.md leaves to us; they stay named options and land in every run's params.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from models.registry import create_model
from spectra.formats import FORMATS
from spectra.labelled import RESAMPLING, SCALING
from spectra.lorentz import LorentzSettings
from spectra.masks import SCHEMES, MaskScheme, draw_masks
from spectra.protocol import VAL_SPLITS
from trials.config import ConfigError, Field
from trials.measure import PRECISIONS

_UNIT = {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}  # the open interval (0, 1)
_POSITIVE = {"low": 0.0, "low_open": True}

# The double-pyramid LeNet of the repo's lenet_usgs.py, used for the synthetic data (MODELS.md A5).
PROTOCOLS = ("split", "leave_one_out")
USGS_LAYERS = "16,16,M,32,32,M,64,64,M,128,128,M,256,256,M"

FIELDS: dict[str, Field] = {
    # Data: the Lorentz-peak generator of TeaNet §4.1 (MODELS.md A8).
    "data.classes": Field(100, "number of classes", low=2, high=100_000),
    "data.samples_per_class": Field(20, "spectra per class, split 60/20/20 per class", low=3, high=100_000),
    "data.length": Field(1024, "points per spectrum", low=8, high=1_000_000),
    # The paper gives grids of ϑ and characteristic FWHM ranges, no default: the defaults are ours.
    "data.theta": Field(1.0, "ϑ: characteristic / non-characteristic peak height (default [OURS])",
                        **_POSITIVE),
    "data.fwhm_low": Field(50.0, "lowest FWHM of characteristic peaks, points of a 1024-point axis "
                           "(default [OURS]; widths clip to one point)", low=0.0),
    "data.fwhm_high": Field(100.0, "highest FWHM of characteristic peaks (default [OURS])", **_POSITIVE),
    "data.other_fwhm_low": Field(50.0, "lowest FWHM of non-characteristic peaks [OURS]", low=0.0),
    "data.other_fwhm_high": Field(100.0, "highest FWHM of non-characteristic peaks [OURS]", **_POSITIVE),
    "data.characteristic_min": Field(1, "fewest characteristic peaks per class [OURS]", low=1, high=100),
    "data.characteristic_max": Field(3, "most characteristic peaks per class [OURS]", low=1, high=100),
    "data.other_min": Field(3, "fewest non-characteristic peaks per spectrum [OURS]", low=1, high=100),
    "data.other_max": Field(5, "most non-characteristic peaks per spectrum [OURS]", low=1, high=100),
    "data.seed": Field(0, "seed of the generated dataset", low=0),
    "data.samples_min": Field(0, "few-shot: when > 0, each class has U{samples_min..samples_per_class} "
                              "spectra [OURS]", low=0, high=100_000),
    # A user's spectra instead (issue 9, part 1): read once by the driver, handed to every trial.
    "data.format": Field("lorentz", "lorentz (generated, no files) or a file format",
                         choices=("lorentz", *FORMATS)),
    "data.path": Field("", "the user's file (csv, npz, teanet_pth) or folder (rruff)"),
    "data.resample": Field("linear", "linear: interpolate onto data.length points over the range every "
                           "spectrum covers [OURS]; none: keep the files' axis", choices=RESAMPLING),
    "data.scale": Field("minmax", "minmax: each spectrum to [0, 1] [OURS]; none: as read", choices=SCALING),
    "data.label_column": Field(0, "csv: the label's column (0 first, -1 last)"),
    "data.class_key": Field("NAMES", "rruff: the ##KEY= header line naming the class"),
    # The evaluation protocol (TeaNet §5.2; MODELS.md A1).
    "eval.protocol": Field("split", "split: generated 60/20/20 per class (§4.1) or a .pth file's own "
                           "test; leave_one_out: one test spectrum per class, repeated (§5.2)",
                           choices=PROTOCOLS),
    "eval.repeats": Field(10, "leave_one_out: repeats with different test picks (paper: 10)", low=1,
                          high=1000),
    "eval.seed": Field(0, "seed of the test picks and the train / validation split (the same for every "
                       "trial, so trials compare on the same spectra)", low=0),
    "eval.val_fraction": Field(0.2, "fraction of the non-test spectra for validation (repo: 0.2)", **_UNIT),
    "eval.val_split": Field("random", "random: the repo's unstratified split; stratified [OURS]: per "
                            "class, one spectrum at least stays in training", choices=VAL_SPLITS),
    "eval.early_stopping": Field("repeats", "leave_one_out: repeats = report after each repeat, so the "
                                 "scheduler halves trials between repeats; none = one report at the end",
                                 choices=("repeats", "none")),
    # Masking (TeaNet §3.3, Table 4; MODELS.md A2).
    "mask.scheme": Field("MS4", "mask scheme", choices=SCHEMES),
    "mask.a": Field(0.0, "MS1/MS2: relative start of the segment", low=0.0, high=1.0, high_open=True),
    "mask.tau": Field(0.5, "MS1/MS3: fixed masked fraction τ", **_UNIT),
    "mask.tau_low": Field(0.3, "τ ~ U(tau_low, tau_high) (MS2/MS4); Σ τ_i ~ the same (MS5)", **_UNIT),
    "mask.tau_high": Field(0.7, "MS2/MS4: upper bound of τ; MS5: upper bound of Σ τ_i", **_UNIT),
    "mask.segments": Field(3, "MS5: number of segments k [OURS]", low=1, high=64),
    "mask.segment_tau_low": Field(0.1, "MS5: lower bound of each τ_i", **_UNIT),
    "mask.segment_tau_high": Field(0.3, "MS5: upper bound of τ_i", **_UNIT),
    "mask.fill": Field(-1.0, "value written into masked points (repo −1; paper: zeros)"),
    "mask.copies": Field(10, "masked copies of each training spectrum", low=1, high=10_000),
    # Joint loss (TeaNet Algorithm 1; MODELS.md A6): L_G = γ·L_rec + (1 − γ)·L_CE.
    "loss.gamma": Field(0.3, "γ: weight of the reconstruction loss (paper convention)", **_UNIT),
    "loss.recon": Field("sse", "L_rec: per-sample sum of squares (repo) or L2 norm (paper)",
                        choices=("sse", "l2norm")),
    # Networks (MODELS.md A3-A5).
    "model.unet_depth": Field(5, "U-Net down/up stages", low=1, high=10),
    "model.unet_width": Field(3, "U-Net convolutions per block", low=1, high=8),
    "model.unet_base_channels": Field(16, "U-Net channels of the first block", low=1, high=1024),
    "model.unet_kernel": Field(9, "U-Net convolution kernel (odd)", low=1, high=101),
    "model.classifier": Field("lenet_usgs", "classifier network", choices=("lenet_usgs", "lenet_ir")),
    "model.classifier_layers": Field(USGS_LAYERS, "classifier conv layers: channels, M = max-pool"),
    "model.classifier_kernel": Field(21, "first classifier kernel (shrinks after each pool)",
                                     low=1, high=101),
    "model.classifier_hidden": Field(2048, "lenet_usgs: hidden width of the head", low=2, high=65_536),
    "model.classifier_dropout": Field(0.5, "lenet_usgs: head dropout", low=0.0, high=1.0, high_open=True),
    "model.classifier_output": Field("logits", "lenet_usgs output: logits [OURS, fair] or the repo's "
                                     "softmax fed to cross-entropy", choices=("logits", "softmax")),
    # Training (MODELS.md A6).
    "train.epochs": Field(300, "training epochs", low=1, high=100_000),
    "train.batch_size": Field(256, "masked spectra per step", low=1, high=1_000_000),
    "train.lr_unet": Field(1e-3, "Adam learning rate of the U-Net", **_POSITIVE),
    "train.lr_classifier": Field(1e-4, "Adam learning rate of the classifier", **_POSITIVE),
    "train.lr_step": Field(20, "StepLR step, in own-phase epochs", low=1, high=100_000),
    "train.lr_decay": Field(0.75, "StepLR factor", low=0.0, high=1.0, low_open=True),
    "train.schedule": Field("alternating", "alternate U-Net / classifier epochs (repo) or update both "
                            "every step (paper's Algorithm 1)", choices=("alternating", "joint")),
    "train.training": Field("joint", "joint: both networks learn together (TeaNet); separate: the U-Net "
                            "first, without the classification loss, then frozen while the classifier "
                            "learns (Table 5)", choices=("joint", "separate")),
    "train.separate_unet_fraction": Field(0.5, "separate: fraction of train.epochs for the U-Net stage "
                                          "[OURS]", **_UNIT),
    "train.device": Field("auto", "where to train: auto = cuda when a GPU is visible",
                          choices=("auto", "cpu", "cuda")),
    "train.precision": Field("fp32", "fp32, or bf16: forward passes under torch.autocast to bfloat16 "
                             "(mixed precision; losses in fp32)", choices=PRECISIONS),
    "train.seed": Field(0, "seed of weights, masks and batch order", low=0),
}


def _settings(cls: type, config: Mapping[str, Any], prefix: str) -> Any:
    """A settings dataclass from the config keys named ``<prefix>.<field>``: the config's names are
    the dataclass's field names, so the two cannot drift apart."""
    return cls(**{field.name: config[f"{prefix}.{field.name}"] for field in dataclasses.fields(cls)})


def lorentz_settings(config: Mapping[str, Any]) -> LorentzSettings:
    """The generator settings a config names (``data.*``)."""
    return _settings(LorentzSettings, config, "data")


def mask_scheme(config: Mapping[str, Any]) -> MaskScheme:
    """The mask scheme a config names (``mask.*`` but the fill value and copies)."""
    return _settings(MaskScheme, config, "mask")


def separate_unet_epochs(config: Mapping[str, Any]) -> int:
    """Epochs of separate training's U-Net stage: at least one, and one left for the classifier."""
    epochs = config["train.epochs"]
    return min(epochs - 1, max(1, round(config["train.separate_unet_fraction"] * epochs)))


def unet_options(config: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "length": config["data.length"],
        "depth": config["model.unet_depth"],
        "width": config["model.unet_width"],
        "base_channels": config["model.unet_base_channels"],
        "kernel": config["model.unet_kernel"],
    }


def classifier_options(config: Mapping[str, Any], num_classes: int | None = None) -> dict[str, Any]:
    """The classifier's options; ``num_classes`` is the data's (a user's files), else data.classes."""
    options = {
        "num_classes": num_classes or config["data.classes"],
        "length": config["data.length"],
        "layers": config["model.classifier_layers"],
        "kernel": config["model.classifier_kernel"],
    }
    if config["model.classifier"] == "lenet_usgs":
        options.update(
            hidden=config["model.classifier_hidden"],
            dropout=config["model.classifier_dropout"],
            output=config["model.classifier_output"],
        )
    return options


def check_config(config: Mapping[str, Any]) -> None:
    """Rules across keys, checked before any training starts; raises ConfigError naming the key."""
    check_data_keys(config)
    _check_ranges(config)
    _check_by_building(config)
    _check_models_build(config)


def check_data_keys(config: Mapping[str, Any]) -> None:
    """A file format needs a path, a path needs a format, and only generated spectra and a .pth file
    carry a test split of their own (the others need the leave-one-out protocol)."""
    fmt, path = config["data.format"], config["data.path"]
    if fmt != "lorentz" and not path:
        raise ConfigError(f"config key 'data.path': data.format={fmt} reads a file; expected its path")
    if fmt == "lorentz" and path:
        raise ConfigError(f"config key 'data.format': data.path is set ({path}); expected the file's format, "
                          f"one of {', '.join(FORMATS)}")
    if fmt in ("csv", "npz", "rruff") and config["eval.protocol"] == "split":
        raise ConfigError(f"config key 'eval.protocol': data.format={fmt} has no test split of its own; "
                          "expected leave_one_out (TeaNet §5.2)")


def _check_ranges(config: Mapping[str, Any]) -> None:
    for low, high in (("mask.tau_low", "mask.tau_high"), ("mask.segment_tau_low", "mask.segment_tau_high")):
        if config[low] >= config[high]:
            raise ConfigError(f"config key '{low}': expected less than {high} ({config[high]}), "
                              f"got {config[low]}")
    for low, high in (("data.fwhm_low", "data.fwhm_high"), ("data.other_fwhm_low", "data.other_fwhm_high"),
                      ("data.characteristic_min", "data.characteristic_max"),
                      ("data.other_min", "data.other_max")):
        if config[low] > config[high]:
            raise ConfigError(f"config key '{low}': expected at most {high} ({config[high]}), "
                              f"got {config[low]}")
    if config["model.unet_kernel"] % 2 == 0:
        raise ConfigError(f"config key 'model.unet_kernel': expected an odd kernel, "
                          f"got {config['model.unet_kernel']}")
    depth, length = config["model.unet_depth"], config["data.length"]
    if length < 2**depth:
        raise ConfigError(f"config key 'data.length': expected at least 2**model.unet_depth = {2**depth} "
                          f"points for a U-Net of depth {depth}, got {length}")


def _check_by_building(config: Mapping[str, Any]) -> None:
    """The generator and the mask scheme validate their own settings (and a mask is drawn once, which
    finds MS5 segments that cannot fit the spectrum); their messages name a field whose config key is
    the same name under ``data.`` or ``mask.``."""
    try:
        lorentz_settings(config)
        draw_masks(mask_scheme(config), config["data.length"], 1, np.random.default_rng(0))
    except ValueError as error:
        message = re.sub(r"^LorentzSettings\.(\w+)", r"config key 'data.\1'", str(error))
        message = re.sub(r"^MaskScheme\.(\w+)", r"config key 'mask.\1'", message)
        raise ConfigError(message) from None


def _check_models_build(config: Mapping[str, Any]) -> None:
    """Build both networks on the meta device, which finds bad layer strings and shapes for free."""
    try:
        with torch.device("meta"):  # shapes only: no memory, no time
            create_model("teanet_unet", **unet_options(config))
            create_model(config["model.classifier"], **classifier_options(config))
    except ValueError as error:
        key = "model.classifier_layers" if str(error).startswith("layers") else "model.*"
        raise ConfigError(f"config key '{key}': {error}") from None
