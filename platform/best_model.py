"""The best trial's trained model, kept as MLflow artifacts of its run, and read back for prediction.

At the end of a search the driver reads the best trial's final state from its Tune checkpoint (the run's
``checkpoint`` tag: a local path or ``s3://...``, read through pyarrow's filesystem either way), keeps
the networks' weights and writes, under the run's ``model/`` artifacts:

- ``weights.pt``: ``{part: state_dict}`` of plain tensors, read back with ``torch.load(weights_only=True)``;
- ``model.yaml``: the study, task, the trial's complete typed config and what the networks take (input
  length, classes), the epoch the weights are from, and the trial's objective value.

``platform.predict`` rebuilds the networks from the config through models.registry and loads them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from platform.options import UsageError
from search_spaces import Study

MODEL_DIR = "model"
WEIGHTS, DESCRIPTION = "weights.pt", "model.yaml"


@dataclass
class SavedModel:
    """A trained model as read back from a run: its description (model.yaml) and its weights."""

    description: dict[str, Any]
    weights: dict[str, dict[str, torch.Tensor]]

    @property
    def config(self) -> dict[str, Any]:
        return self.description["config"]


def model_parts(task: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The networks' weights in a trial's state (trials/hed.py and trials/teanet.py say its keys)."""
    if task == "hed":  # one classifier per pair of anchor ranges (pair 1's keys are the state's own)
        later = enumerate(state.get("more_pairs", []), start=2)
        more = {f"classifier_{k}": pair["model"] for k, pair in later}
        return {"classifier": state["model"], **more}
    if task == "teanet":  # the U-Net too: it is the model's reconstruction half
        trainer = state["trainer"]
        # The classifier the trial kept by validation loss (its reported figures are of it); states
        # written before it was kept hold only the last epoch's.
        return {"classifier": state.get("kept_classifier") or trainer["classifier"], "unet": trainer["unet"]}
    raise ValueError(f"no rule for the weights of task {task!r}")


def pair_parts(weights: Mapping[str, Any]) -> list[str]:
    """A saved HED model's classifiers in pair order: ``classifier`` (pair 1), ``classifier_2``, …"""
    more = [name for name in weights if name.startswith("classifier_")]
    return ["classifier", *sorted(more, key=lambda name: int(name.removeprefix("classifier_")))]


def input_length(study: Study, config: Mapping[str, Any], data: Any) -> int:
    """The spectrum length the trained networks take."""
    if study.task == "teanet":
        return int(config["data.length"])
    from trials.hed_config import cropped_points, simulated_points

    return simulated_points(config) if data is None else cropped_points(config, np.asarray(data.two_theta))


def _spectra_axis(config: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """What predict needs to put new spectra where the classifier expects them: the class names, and
    for a user's files the wavenumber grid they were resampled onto (generated spectra have none)."""
    if data is None:
        return {"class_names": [str(k) for k in range(int(config["data.classes"]))]}
    return {"class_names": list(data.class_names), "wavenumbers": [float(w) for w in data.wavenumbers]}


def read_checkpoint_state(uri: str) -> dict[str, Any]:
    """A trial's state from its Tune checkpoint, on local disk or on a shared filesystem (s3://...)."""
    import pyarrow.fs
    from ray.tune import Checkpoint

    from trials.trainable import load_state

    if "://" in uri:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        checkpoint = Checkpoint(path, filesystem=filesystem)
    else:
        checkpoint = Checkpoint(uri)
    with checkpoint.as_directory() as directory:
        return load_state(directory)


def save_best_model(client: Any, study: Study, best: Mapping[str, Any], data: Any) -> str:
    """Log the best trial's weights and config as artifacts of its run (``model/``); returns what was
    written, in words. Raises on a run without a checkpoint (the caller says so as a warning)."""
    from platform.summary import typed_config

    run = client.get_run(best["run_id"])
    uri = run.data.tags.get("checkpoint")
    if not uri:
        raise ValueError(f"run {best['run_id']} has no checkpoint tag: its weights were not kept")
    state = read_checkpoint_state(uri)
    config = typed_config(best, study)
    description = {
        "study": study.name, "task": study.task, "run_id": best["run_id"], "trial": best["trial"],
        "search_id": run.data.tags.get("search_id"), "checkpoint": uri,
        "weights_epoch": int(state["epochs"]), "length": input_length(study, config, data),
        study.objective.metric: best.get(study.objective.metric), "config": config,
    }
    if study.task == "teanet":
        description.update(_spectra_axis(config, data))
    if "selected_epoch" in best:  # TeaNet reports the classifier kept by validation loss
        description["selected_epoch"] = int(best["selected_epoch"])
        if state.get("kept_classifier"):  # the classifier saved is that one (the U-Net: the last epoch's)
            description["weights_epoch"] = description["selected_epoch"]
    weights = {name: {key: tensor.detach().cpu().clone() for key, tensor in part.items()}
               for name, part in model_parts(study.task, state).items()}
    with tempfile.TemporaryDirectory(prefix="best-model-") as directory:
        torch.save(weights, Path(directory) / WEIGHTS)
        (Path(directory) / DESCRIPTION).write_text(yaml.safe_dump(description, sort_keys=False))
        client.log_artifacts(best["run_id"], directory, MODEL_DIR)
    client.set_tag(best["run_id"], "best_model", "true")
    return f"artifacts {MODEL_DIR}/{WEIGHTS} and {MODEL_DIR}/{DESCRIPTION} of run {best['run_id']}"


def load_saved_model(client: Any, run_id: str) -> SavedModel:
    """The model a run keeps; UsageError (one line) when the run does not exist or keeps none."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        raise UsageError(f"no run {run_id!r} in this MLflow store") from None
    names = {artifact.path for artifact in client.list_artifacts(run_id, MODEL_DIR)}
    if f"{MODEL_DIR}/{WEIGHTS}" not in names:
        raise UsageError(f"run {run_id} keeps no model (only the best trial of each search keeps its "
                         f"weights, as artifact {MODEL_DIR}/{WEIGHTS})")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # the table is the output
    with tempfile.TemporaryDirectory(prefix="saved-model-") as directory:
        folder = Path(client.download_artifacts(run_id, MODEL_DIR, directory))
        description = yaml.safe_load((folder / DESCRIPTION).read_text())
        weights = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    return SavedModel(description, weights)
