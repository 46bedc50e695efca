"""What the user sees while a search runs and when it ends: a live progress line and the top trials."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import pandas as pd
from ray.tune import Callback

from platform.tracking import numeric_metrics


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLine(Callback):
    """A line on each change (a trial starts, ends or improves the best) and a heartbeat: done /
    running / failed / total, the best so far with its trial, elapsed and estimated remaining.

    The best is taken over ended trials, each at its last report: the value the searcher is told and
    the summary ranks by (an epoch's passing value of a running trial is neither)."""

    def __init__(self, total: int, metric: str, mode: str, concurrency: int, already_done: int = 0,
                 stream: TextIO | None = None, min_interval_s: float = 10.0, heartbeat_s: float = 60.0,
                 name_of: Callable[[str], str] = str):
        self.total, self.metric, self.mode = total, metric, mode
        self.concurrency = max(1, concurrency)
        self.done, self.failed, self.running = already_done, 0, set()
        self.best: tuple[float, str] | None = None
        self.stream, self.name_of = stream, name_of
        self.min_interval_s, self.heartbeat_s = min_interval_s, heartbeat_s
        self.started = time.monotonic()
        self.trial_seconds: list[float] = []
        self._trial_started: dict[str, float] = {}
        self._last_state: tuple = ()
        self._last_print = -float("inf")

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.running.add(trial.trial_id)
        self._trial_started[trial.trial_id] = time.monotonic()
        self._print()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._print()  # the heartbeat; the best changes only when a trial ends

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        value = numeric_metrics(trial.last_result or {}).get(self.metric)
        if value is not None and (self.best is None or self._better(value, self.best[0])):
            self.best = (value, self.name_of(trial.trial_id))
        self._finish(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, failed=True)

    def _finish(self, trial: Any, failed: bool) -> None:
        self.running.discard(trial.trial_id)
        self.done += 1
        self.failed += failed
        started = self._trial_started.pop(trial.trial_id, None)
        if started is not None:
            self.trial_seconds.append(time.monotonic() - started)
        self._print(force=True)

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.mode == "max" else value < than

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.total} done", f"{len(self.running)} running", f"{self.failed} failed"]
        if self.best is not None:
            parts.append(f"best {self.metric} {self.best[0]:.4g} ({self.best[1]})")
        parts.append(f"{_clock(elapsed)} elapsed")
        if self.trial_seconds:
            mean = sum(self.trial_seconds) / len(self.trial_seconds)
            left = max(0, self.total - self.done) * mean / self.concurrency
            parts.append(f"~{_clock(left)} left")
        return "[search] " + " · ".join(parts)

    def _print(self, force: bool = False) -> None:
        """Trial ends always print; otherwise a changed state (a start, a new best) at most every
        ``min_interval_s``, and a heartbeat with the clock every ``heartbeat_s``."""
        now = time.monotonic()
        state = (self.done, len(self.running), self.failed, self.best)
        since = now - self._last_print
        if not force and (since < self.min_interval_s or (state == self._last_state
                                                          and since < self.heartbeat_s)):
            return
        print(self.line(), file=self.stream or sys.stdout, flush=True)  # looked up late: Tune pickles us
        self._last_state, self._last_print = state, now


def results_table(rows: Sequence[Mapping[str, Any]], metric: str, mode: str,
                  searched: Sequence[str] = (), results: Sequence[str] = ("accuracy",)) -> pd.DataFrame:
    """One row per trial: status, the objective, the study's result columns (e.g. test accuracy),
    cost and the searched keys, best first (failed trials last)."""
    columns = list(dict.fromkeys(["trial", "status", "stop_reason", metric, *results, "train_time_s",
                                  "peak_memory_mb", "epochs", *searched]))
    frame = pd.DataFrame([{column: row.get(column) for column in columns} for row in rows], columns=columns)
    if frame.empty:
        return frame
    frame = frame.sort_values(metric, ascending=(mode == "min"), na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def format_table(frame: pd.DataFrame, limit: int = 10) -> str:
    if frame.empty:
        return "(no trials)"
    shown = frame.head(limit).copy()
    for column in shown.columns:  # missing values are blank, numbers to 4 significant digits
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
        else:
            shown[column] = shown[column].map(lambda v: "" if v is None or v is pd.NA or v != v else v)
    return shown.to_string(index=False)
