"""The Ray Tune trainable: runs one study trial on a worker and reports through Tune.

It lives on the worker side (never imports the driver's ``platform`` package: a Ray worker has
already imported the standard one). Keys of the config that start with ``_`` are the driver's notes
(e.g. ``_row``, the label of a reproduction-grid row) and are not passed to the trial.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

# Trial functions by task name: "module:function", imported on the worker when first used.
TASKS = {"teanet": "models.teanet_trial:run_trial", "hed": "models.hed_trial:run_trial"}

TrialFunction = Callable[[Mapping[str, Any], Callable[[dict], None]], dict]


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


def run_study_trial(config: dict[str, Any], task: str, data: Any = None) -> None:
    """Tune function trainable: ``tune.with_parameters(run_study_trial, task=..., data=...)``.
    ``data`` is what the driver read from a user's files (Ray's object store carries it to every
    worker, so no trial opens a path that exists only on the driver); ``None`` for generated data."""
    import ray
    from ray import tune

    from models.measure import select_device

    where = {"node_id": ray.get_runtime_context().get_node_id(),
             "device": select_device(str(config.get("train.device", "auto")))}

    def report(metrics: dict) -> None:
        tune.report({**metrics, **where})

    extra = {} if data is None else {"data": data}
    trial_function(task)(trial_config(config), report, **extra)
