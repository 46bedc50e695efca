"""Grid dimensions inside a define-by-run search: a key whose value is set by the trial's number, so
every value gets an equal share of the trials (round robin, in the order trials are asked for), while
the searcher (TPE) proposes everything else within it (issue 9: "the method is a grid dimension; within
it, TPE").

The value is pinned through Optuna's own fixed-parameter mechanism (what ``enqueue_trial`` uses): the
parameter is still suggested with its full categorical distribution, so the study's space stays one
consistent space that TPE can model, and the value lands in the trial's params and config as any other.
A key fixed with ``--set`` is not a dimension any more: it keeps its fixed value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _number(trial: Any) -> int:
    """The trial's number; 0 for a stand-in without one (``--show`` lists the space with a recorder)."""
    return getattr(trial, "number", 0)


def pinned(trial: Any, key: str, choices: Sequence[Any], value: Any) -> Any:
    """Suggest ``key`` over ``choices`` (its whole categorical distribution) with its value pinned."""
    # Ray's OptunaSearch hands the space a wrapper that records suggestions (its ``ot_trial`` is the
    # optuna.Trial); the pin goes on the Trial itself. A FixedTrial (a re-run) has its own values.
    inner = getattr(trial, "ot_trial", trial)
    fixed = getattr(inner, "_fixed_params", None)
    if fixed is not None and key not in fixed:
        inner._fixed_params = {**fixed, key: value}
    return trial.suggest_categorical(key, tuple(choices))


def dimension(trial: Any, key: str, choices: Sequence[Any], fixed: Mapping[str, Any]) -> Any:
    """One grid dimension: ``fixed[key]`` if set, else the choice this trial's number falls on."""
    if key in fixed:
        return fixed[key]
    return pinned(trial, key, choices, choices[_number(trial) % len(choices)])


# An axis of a grid: the keys it sets together (e.g. a range's low and high) and its points, each a
# tuple of one value per key.
Axis = tuple[tuple[str, ...], Sequence[tuple[Any, ...]]]


def grid_point(trial: Any, axes: Sequence[Axis], fixed: Mapping[str, Any]) -> dict[str, Any]:
    """A point of the product of ``axes`` by the trial's number (the last axis varies fastest), so
    ``len(product)`` consecutive trials cover the grid once. An axis with a key in ``fixed`` is left
    out (the grid is then the product of the others). Returns the values pinned."""
    free = [(keys, points) for keys, points in axes if not any(key in fixed for key in keys)]
    size = 1
    for _, points in free:
        size *= len(points)
    index, chosen = _number(trial) % size, {}
    for keys, points in reversed(free):
        index, position = divmod(index, len(points))
        for column, key in enumerate(keys):
            choices = tuple(dict.fromkeys(point[column] for point in points))
            chosen[key] = pinned(trial, key, choices, points[position][column])
    return chosen
