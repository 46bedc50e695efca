"""The spectra a TeaNet-family trial trains on: generated Lorentz spectra (made on the worker from their
settings) or the user's spectra the driver read (``data``), cut by the config's protocol.

``eval.protocol=split``: one fixed split (generated: 60/20/20 per class, TeaNet §4.1; a TeaNet .pth file:
its own ``test`` and 80/20 of ``train_valid``). ``leave_one_out``: the pool of spectra the repeats of
spectra.protocol draw from (classes with one spectrum left out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from spectra.labelled import LabelledSpectra
from spectra.lorentz import LorentzSettings
from spectra.protocol import ProtocolPool, as_labelled, given_test, leave_one_out, protocol_pool
from spectra.splits import SpectraSplits
from trials.teanet_config import lorentz_settings

Generate = Callable[[LorentzSettings], SpectraSplits]


def uses_files(config: Mapping[str, Any]) -> bool:
    return config["data.format"] != "lorentz"


def _user_data(config: Mapping[str, Any], data: Any) -> LabelledSpectra:
    if not isinstance(data, LabelledSpectra):
        raise ValueError(f"data.format={config['data.format']}: the trial was handed no spectra (the driver "
                         "reads data.path and passes them); got " + type(data).__name__)
    return data


def fixed_split(config: Mapping[str, Any], data: Any, generate: Generate) -> SpectraSplits:
    """The one split of ``eval.protocol=split``."""
    if not uses_files(config):
        return generate(lorentz_settings(config))
    return given_test(_user_data(config, data), config["eval.seed"], config["eval.val_fraction"],
                      config["eval.val_split"])


def pool(config: Mapping[str, Any], data: Any, generate: Generate) -> ProtocolPool:
    """What the leave-one-out repeats draw from: every generated spectrum, or the user's."""
    if uses_files(config):
        return protocol_pool(_user_data(config, data))
    return protocol_pool(as_labelled(generate(lorentz_settings(config)), "lorentz"))


def repeat_split(config: Mapping[str, Any], spectra: ProtocolPool, repeat: int) -> SpectraSplits:
    """Repeat ``repeat`` of the protocol, the same for every trial of the same ``eval.*`` keys."""
    return leave_one_out(spectra, repeat, config["eval.seed"], config["eval.val_fraction"],
                         config["eval.val_split"])
