"""What a study is: plain data the driver reads (DESIGN.md, "Studies").

A study names its task (which trial function runs), the task's config keys, its define-by-run search
space, its objective, its budgets and its reproduction grid. Modules under ``search_spaces/`` each build
one :class:`Study`; nothing here imports Ray, MLflow or the driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trials.config import Fields, check_keys, complete_config

# define_space(trial, fixed): suggest, on an optuna.Trial, every searched key not in ``fixed``.
SpaceFunction = Callable[[Any, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Objective:
    """The metric a search optimises. Always a validation metric: test metrics are only recorded."""

    metric: str
    mode: str  # "max" or "min"
    note: str = ""


@dataclass(frozen=True)
class Budget:
    """Defaults of everything that costs; every value lands in the trial's config and its params.
    A key a budget sets is not searched, and wins over a reproduction grid's row (a smoke grid stays
    cheap); ``--set`` wins over both."""

    trials: int
    config: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class GridRow:
    """One row of a reproduction grid: the config it fixes and the published figures beside it."""

    label: str
    config: Mapping[str, Any]
    reference: Mapping[str, float] = field(default_factory=dict)


@dataclass
class SearchEnd:
    """What a study's ``after_search`` hook gets: the store, the search's parent run, its trial rows
    (platform.summary.trial_rows: one dict per child run, ``run_id`` included), the best row by the
    objective (None when no trial has a result), the data the driver read (None for generated data) and
    the search's kind (``search``, ``reproduce``, ...)."""

    client: Any  # an MlflowClient
    parent_run_id: str
    rows: list[Mapping[str, Any]]
    best: Mapping[str, Any] | None
    data: Any
    kind: str


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    task: str  # key of trials.trainable.TASKS (or module:function)
    fields: Fields
    define_space: SpaceFunction
    objective: Objective
    budgets: Mapping[str, Budget]
    default_budget: str
    epochs_key: str  # the config key holding a trial's epoch count
    check_config: Callable[[Mapping[str, Any]], None]  # cross-key rules; raises ConfigError
    reproduction: tuple[GridRow, ...] = ()
    reference_source: str = ""
    reference_columns: tuple[str, ...] = ()
    # Tags naming the data a config trains on (dataset name, hash of its content or generator settings).
    data_tags: Callable[[Mapping[str, Any]], dict[str, str]] = lambda config: {}
    # ASHA's first rung, as a fraction of each trial's planned epochs (rungs at grace·3^k): a trial
    # always gets this much of its own training before it can be stopped.
    grace_fraction: float = 1 / 9
    # Metrics shown beside the objective in tables (the summary and the reproduction grid).
    result_columns: tuple[str, ...] = ("accuracy",)
    # Read a user's data on the driver (e.g. data.path); None when the config asks for generated data.
    # Raises ValueError with one line on bad files.
    load_data: Callable[[Mapping[str, Any]], Any] = lambda config: None
    # Memory (GB) one trial of this config needs, for Ray's scheduler; 0: no reservation.
    memory_gb: Callable[[Mapping[str, Any]], float] = lambda config: 0.0
    # The scheduler when --scheduler is not given: "asha", or "fifo" for a study whose trials are the cells
    # of a table (stopping one early would leave its cell empty).
    default_scheduler: str = "asha"
    # Rules on the keys the user typed (--set) before a config file, defaults and budgets fill the rest
    # in, for what the complete config can no longer tell (two keys that must not both be given; a config
    # file may hold every key, as an export's does). Raises ConfigError.
    check_given: Callable[[Mapping[str, Any]], None] = lambda given: None
    # What this study adds once a search has ended (tables it prints, figures of its best trial logged to
    # the parent run): called by the driver with a SearchEnd, after the common summary. Its failure is
    # reported, never fatal: the record of the trials is already complete.
    after_search: Callable[[SearchEnd], None] | None = None

    def __post_init__(self) -> None:
        if self.default_scheduler not in ("asha", "fifo"):
            raise ValueError(f"{self.name}: default_scheduler must be asha or fifo, "
                             f"got {self.default_scheduler!r}")
        if not 0 < self.grace_fraction < 1:
            raise ValueError(f"{self.name}: grace_fraction must be in (0, 1), got {self.grace_fraction}")
        if self.default_budget not in self.budgets:
            raise ValueError(f"{self.name}: default budget {self.default_budget!r} is not a budget")
        for name, budget in self.budgets.items():
            self.check_config(self.config_for(name, budget.config))
        for row in self.reproduction:
            check_keys(row.config, self.fields)

    def grid_config(self, budget: str, row: GridRow, fixed: Mapping[str, Any]) -> dict[str, Any]:
        """A grid row's complete config: defaults, the row, then the budget and --set on top."""
        config = complete_config(self.fields, row.config, self.budgets[budget].config, fixed)
        self.check_config(config)
        return config

    def config_for(self, budget: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
        """A complete trial config: the task's defaults, then the budget's, then each layer, checked."""
        if budget not in self.budgets:
            raise KeyError(f"unknown budget {budget!r}; known budgets: {', '.join(self.budgets)}")
        config = complete_config(self.fields, self.budgets[budget].config, *layers)
        self.check_config(config)
        return config
