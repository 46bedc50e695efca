"""The Ray Tune trainable: runs one study trial on a worker and reports through Tune.

It lives on the worker side (never imports the driver's ``platform`` package: a Ray worker has
already imported the standard one). Keys of the config that start with ``_`` are the driver's notes
(e.g. ``_row``, the label of a reproduction-grid row) and are not passed to the trial.

Checkpoints: a trial function that takes ``resume_from`` and ``report_state`` (trials.contract) hands
its state over with every report; the trainable saves it as a Tune checkpoint (``torch.save`` of plain
tensors and dicts) and, when Tune retries the trial after a failure (``FailureConfig.max_failures``),
loads the latest one back (``torch.load(weights_only=True)``) and the trial continues at the next epoch.
Artifacts: ``report(metrics, artifacts={"file.png": bytes})`` (any trial function, typically in its last
report) puts files in the checkpoint's ``artifacts/`` folder, which travels through Tune's storage (shared
on a cluster); the driver logs them to the trial's MLflow run (workers never open the store).
Trial functions stay free of Tune; :func:`run_task` is everything here but Tune, testable without Ray.
"""

from __future__ import annotations

import importlib
import inspect
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from trials.measure import memory_released_after, select_device

# Trial functions by task name: "module:function", imported on the worker when first used.
TASKS = {"teanet": "trials.teanet:run_trial", "hed": "trials.hed:run_trial",
         "teanet_baselines": "trials.baselines:run_trial"}

TrialFunction = Callable[..., dict]
STATE_FILE = "trial_state.pt"  # a trial's state in its Tune checkpoint
ARTIFACTS_DIR = "artifacts"  # files a trial hands the driver for its MLflow run (figures, labels, ...)
ARTIFACT_NAMES = "artifact_names"  # result key: the files of ARTIFACTS_DIR in this report's checkpoint


def trial_function(task: str) -> TrialFunction:
    """The trial function of ``task``: a name in :data:`TASKS`, or a ``module:function`` path (a
    user's own trial function, importable on the workers)."""
    if task not in TASKS and ":" not in task:
        raise KeyError(f"unknown task {task!r}; known tasks: {', '.join(sorted(TASKS))}, "
                       "or module:function")
    module, function = TASKS.get(task, task).split(":")
    return getattr(importlib.import_module(module), function)


def trial_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's own config: everything but the driver's ``_`` notes."""
    return {key: value for key, value in config.items() if not key.startswith("_")}


def checkpoints(function: TrialFunction) -> bool:
    """Whether a trial function keeps the checkpoint rule (takes ``resume_from`` and ``report_state``).
    One that does not (a user's simple function) runs without checkpoints: a retry starts it over."""
    parameters = inspect.signature(function).parameters
    return "resume_from" in parameters and "report_state" in parameters


def save_state(state: Mapping[str, Any], directory: str | Path) -> Path:
    """Write a trial's state into ``directory`` (its checkpoint's contents)."""
    path = Path(directory) / STATE_FILE
    torch.save(dict(state), path)
    return path


def save_artifacts(artifacts: Mapping[str, bytes], directory: str | Path) -> list[str]:
    """Write a trial's artifacts (file name → content) under ``directory/artifacts``; their names."""
    folder = Path(directory) / ARTIFACTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in artifacts.items():
        if Path(name).name != name:
            raise ValueError(f"artifact name {name!r} must be a plain file name")
        (folder / name).write_bytes(content)
    return sorted(artifacts)


def load_state(directory: str | Path) -> dict[str, Any]:
    """Read back a state written by :func:`save_state`: tensors onto the CPU (the trial moves them to
    its device, which may differ on the node that resumes it), nothing but plain data unpickled."""
    return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


def run_task(function: TrialFunction, config: Mapping[str, Any], report: Callable[..., None],
             data: Any = None, resume_from: Mapping[str, Any] | None = None,
             device: str = "cpu", cuda: Any = torch.cuda) -> dict | None:
    """Run one trial function as the trainable does, without Tune: with the driver's notes left out, the
    user's data if any, states reported and resumed from where the function keeps the checkpoint rule,
    and the trial's memory released when it ends, returned or raised (``cuda`` injectable for tests):
    a reused worker's next trial starts with the device's memory free."""
    extra: dict[str, Any] = {} if data is None else {"data": data}
    if checkpoints(function):
        extra.update(resume_from=resume_from, report_state=True)
    elif resume_from is not None:
        raise ValueError("a checkpoint to resume from, but the trial function takes no resume_from")
    with memory_released_after(device, cuda):
        return function(trial_config(config), report, **extra)


def run_study_trial(config: dict[str, Any], task: str, data: Any = None,
                    deadline: float | None = None) -> None:
    """Tune function trainable: ``tune.with_parameters(run_study_trial, task=..., data=...)``.
    ``data`` is what the driver read from a user's files (Ray's object store carries it to every
    worker, so no trial opens a path that exists only on the driver); ``None`` for generated data.
    ``deadline`` (epoch seconds) is the search's time budget: a trial that only gets to start after
    it (it waited for resources) returns at once without a report, which the driver records as
    ``stop_reason = time_budget`` (trials.contract). A retried trial resumes from its latest
    checkpoint (the deadline does not apply: it had started)."""
    import ray
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None and deadline is not None and time.time() > deadline:
        return
    resume_from = None
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            if (Path(directory) / STATE_FILE).exists():  # not one holding only artifacts
                resume_from = load_state(directory)

    device = select_device(str(config.get("train.device", "auto")))
    where = {"node_id": ray.get_runtime_context().get_node_id(), "device": device}

    def report(metrics: dict, state: Mapping[str, Any] | None = None,
               artifacts: Mapping[str, bytes] | None = None) -> None:
        if state is None and not artifacts:
            tune.report({**metrics, **where})
            return
        # Tune copies the checkpoint into its storage within report(): the temp dir can go after it.
        with tempfile.TemporaryDirectory(prefix="trial-state-") as directory:
            extra: dict[str, str] = {}
            if state is not None:
                save_state(state, directory)
            if artifacts:
                extra[ARTIFACT_NAMES] = ",".join(save_artifacts(artifacts, directory))
            tune.report({**metrics, **where, **extra}, checkpoint=tune.Checkpoint.from_directory(directory))

    run_task(trial_function(task), config, report, data, resume_from, device)
