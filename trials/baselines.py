"""One teanet_baselines trial: the method of TeaNet's Table 3 named by ``method``, on the same data and
under the same protocol as TeaNet (issue 9, part 3).

``teanet`` runs the TeaNet trial itself (trials.teanet). Every other method runs split by split through
trials.repeats: the classifier-only networks (trials.classifier_only) and the shallow methods
(trials.shallow). With ``eval.protocol=split`` a trial is one such split (reported once); with
``leave_one_out`` it is ``eval.repeats`` of them, reported after each. Every trial's last report carries
``test_predictions.csv``; the state keeps the last split's classifier weights under ``classifier``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from spectra.protocol import ProtocolPool
from spectra.splits import SpectraSplits
from trials import teanet, trial_data
from trials.baselines_config import FIELDS, check_config, teanet_keys
from trials.classifier_only import fit_classifier
from trials.config import complete_config
from trials.contract import resume_epochs
from trials.measure import PeakMemory, select_device
from trials.repeats import RepeatResult, predictions_csv, run_repeats
from trials.shallow import SHALLOW, fit_shallow
from trials.teanet_config import lorentz_settings


def run_trial(config: Mapping[str, Any], report: teanet.Report | None = None, data: Any = None,
              resume_from: Mapping[str, Any] | None = None, report_state: bool = False) -> dict[str, float]:
    """Train and evaluate one method; returns the final metrics (the trial contract of trials.contract)."""
    config = complete_config(FIELDS, config)
    check_config(config)
    if config["method"] == "teanet":
        return teanet.run_trial(teanet_keys(config), report, data, resume_from, report_state)
    resume_epochs(resume_from, config)
    device = select_device(config["train.device"])
    report = report or (lambda metrics, **extra: None)
    with PeakMemory(device, floor_mb=resume_from["peak_memory_mb"] if resume_from else 0.0) as memory:
        if not trial_data.uses_files(config):
            memory.count_cached(teanet.cached_lorentz(lorentz_settings(config)))
        spectra, split, repeats = _protocol(config, data)
        fit = functools.partial(_fit, config, device)

        def artifacts(done: list[dict[str, Any]], last: RepeatResult | None) -> dict[str, bytes]:
            return {"test_predictions.csv": predictions_csv(done, spectra.class_names)}

        return run_repeats(config, spectra, fit, split, report, memory, artifacts, resume_from, report_state,
                           repeats=repeats)


def _fit(config: Mapping[str, Any], device: str, splits: SpectraSplits, repeat: int) -> RepeatResult:
    if config["method"] in SHALLOW:
        return fit_shallow(config, splits, repeat)
    return fit_classifier(config, device, splits, repeat)


def _protocol(config: Mapping[str, Any], data: Any):
    """(the pool the splits come from, split(repeat), number of splits) of the config's protocol."""
    if config["eval.protocol"] == "leave_one_out":
        spectra = trial_data.pool(config, data, teanet.cached_lorentz)
        return spectra, functools.partial(trial_data.repeat_split, config, spectra), config["eval.repeats"]
    splits = trial_data.fixed_split(config, data, teanet.cached_lorentz)
    names = tuple(data.class_names) if data is not None else tuple(map(str, range(splits.num_classes)))
    spectra = ProtocolPool(splits.x_train, splits.y_train, names, left_out=())
    return spectra, lambda repeat: splits, 1
