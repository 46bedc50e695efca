"""The config of a HED trial: data (a user's series or the simulated ramp), the model and its options,
training and evaluation, with the paper's quirks as named options (MODELS.md part B).

Quirk options default to the fair choice for tuning; the reproduction grids switch them to the paper's
(`QUIRKS`), and every run records which was used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from models.config import ConfigError, Field
from models.registry import create_model, model_options
from spectra.hed_data import TrainingSetSettings, anchor_indices, parse_range
from spectra.ramp import RampSettings

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
}

_BASE_FIELDS: dict[str, Field] = {
    # Data (MODELS.md B1-B3): a user's folder of .xy/.xye files, or the simulated ramp.
    "data.path": Field("", "folder of .xy/.xye files (read by the driver); empty: the simulated ramp"),
    "data.header_lines": Field(-1, "header lines of each file; -1: detect", low=-1, high=10_000),
    "data.transition": Field(-1, "true transition index of a user's series, if known (-1: unknown)",
                             low=-1),
    "data.spectra": Field(349, "simulator: spectra in the time series", low=4, high=100_000),
    "data.points": Field(4023, "simulator: points per spectrum", low=64, high=1_000_000),
    "data.sim_transition": Field(185, "simulator: index of the first high-pressure spectrum", low=1),
    "data.seed": Field(0, "simulator seed", low=0),
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
    "eval.every": Field(1, "evaluate the series every n epochs (and at the last); the binned model's "
                        "test set is 349·N2 rows, costlier than an epoch", low=1, high=100_000),
    "eval.batchnorm": Field("eval", "BatchNorm at test: eval (fair) or train, the paper's quirk (B3)",
                            choices=("eval", "train")),
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
                        transition=config["data.sim_transition"], seed=config["data.seed"])


def training_settings(config: Mapping[str, Any]) -> TrainingSetSettings:
    """Anchors and noisy copies of the training set (B2)."""
    return TrainingSetSettings(pool_step=config["data.pool_step"], class0=config["data.class0"],
                               class1=config["data.class1"], copies=config["data.copies"],
                               noise_scale=config["data.noise_scale"], seed=config["data.noise_seed"])


def training_rows(config: Mapping[str, Any]) -> int:
    """Rows of the training set: every anchor and its noisy copies (B2: 31 × 51 = 1581)."""
    anchors = sum(len(parse_range(config[key])) for key in ("data.class0", "data.class1"))
    return anchors * (config["data.copies"] + 1)


def check_config(config: Mapping[str, Any]) -> None:
    """Rules across keys, before any data is made or read; raises ConfigError naming the key."""
    sequence = config.get(f"model.{config['model.name']}.sequence")
    if sequence == "paper" and config["train.batch_size"]:
        raise ConfigError(f"config key 'model.{config['model.name']}.sequence': the paper's sequences "
                          "are built from the full training batch; expected train.batch_size=0")
    if not config["data.path"] and config["data.sim_transition"] >= config["data.spectra"]:
        raise ConfigError("config key 'data.sim_transition': expected less than data.spectra "
                          f"({config['data.spectra']}), got {config['data.sim_transition']}")
    _check_data(config)
    _check_paper_layout(config)
    _check_model_builds(config)


def _check_paper_layout(config: Mapping[str, Any]) -> None:
    """The paper's sequences reshape the (copies + 1) · anchors training rows into blocks of 51 = 50 + 1
    (B5.4, B5.5): the block must divide the rows."""
    name = config["model.name"]
    block_key = {"lstm": "sequence_length", "transformer": "columns", "sct_attention": "columns"}.get(name)
    if block_key is None or config[f"model.{name}.sequence"] != "paper":
        return
    rows, block = training_rows(config), config[f"model.{name}.{block_key}"]
    if rows % block:
        expected = config["data.copies"] + 1
        raise ConfigError(f"config key 'model.{name}.{block_key}': the paper's layout needs it to divide "
                          f"the {rows} training rows; expected data.copies + 1 = {expected}, got {block}")


def _check_data(config: Mapping[str, Any]) -> None:
    """Anchors (and, for the simulator, the series they fall in) checked by the data code itself;
    its messages name a field whose config key is the same name under ``data.``."""
    try:
        settings = training_settings(config)
        if not config["data.path"]:
            anchor_indices(settings, config["data.spectra"])
            ramp_settings(config)
    except ValueError as error:
        message = re.sub(r"^(TrainingSetSettings|RampSettings)\.(\w+)", r"config key 'data.\2'", str(error))
        raise ConfigError(message.replace("'data.transition'", "'data.sim_transition'")) from None


def _check_model_builds(config: Mapping[str, Any]) -> None:
    # A user's series has its real length checked when the driver reads it; the paper's stands in here.
    check_model(config, 4023 if config["data.path"] else config["data.points"])


def check_model(config: Mapping[str, Any], length: int) -> None:
    """Build the model on the meta device: bad options (bins, heads, layer strings) fail here, free."""
    try:
        with torch.device("meta"):
            create_model(config["model.name"], num_classes=1, length=length, **model_config(config))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"config key 'model.{config['model.name']}.*': {error}") from None
