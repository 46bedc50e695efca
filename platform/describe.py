"""``--list`` and ``--show``: what studies exist and what one of them searches, without running."""

from __future__ import annotations

from typing import Any

from search_spaces import Study, list_studies, load_study


class _RecordingTrial:
    """Stands in for an optuna.Trial to list which keys a space suggests, and their ranges."""

    def __init__(self, scheme_choice: Any = None):
        self.suggested: dict[str, str] = {}
        self.choice = scheme_choice

    def suggest_float(self, name: str, low: float, high: float, log: bool = False, **_: Any) -> float:
        self.suggested[name] = f"float [{low:g}, {high:g}]" + (" log" if log else "")
        return low

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        self.suggested[name] = f"int [{low}, {high}]"
        return low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        self.suggested[name] = "one of " + ", ".join(str(c) for c in choices)
        return self.choice if self.choice in choices else choices[0]


def space_lines(study: Study) -> list[str]:
    """The define-by-run space, branch by branch of its first categorical choice."""
    probe = _RecordingTrial()
    study.define_space(probe, {})
    first = next(iter(probe.suggested), None)
    if first is None:
        return ["  (nothing searched)"]
    if not probe.suggested[first].startswith("one of"):  # no branches: every key as it is
        return [f"  {key}: {text}" for key, text in probe.suggested.items()]
    lines = [f"  {first}: {probe.suggested[first]}"]
    choices = [c.strip() for c in probe.suggested[first].removeprefix("one of ").split(",")]
    for choice in choices if probe.suggested[first].startswith("one of") else []:
        branch = _RecordingTrial(_parse(choice))
        study.define_space(branch, {})
        keys = {k: v for k, v in branch.suggested.items() if k != first}
        lines.append(f"    when {first} = {choice}: " + "; ".join(f"{k} {v}" for k, v in keys.items()))
    return lines


def _parse(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def show(study: Study) -> str:
    objective = study.objective
    note = f" ({objective.note})" if objective.note else ""
    lines = [f"{study.name} — {study.description}", "", f"task: {study.task}",
             f"objective: {objective.mode} {objective.metric}{note}",
             "", "search space (define-by-run):", *space_lines(study), "", "budgets:"]
    for name, budget in study.budgets.items():
        default = " (default)" if name == study.default_budget else ""
        lines.append(f"  {name}{default}: {budget.trials} trials, {budget.description}")
        lines += [f"      {k} = {v}" for k, v in budget.config.items()]
    lines += ["", f"reproduction grid ({len(study.reproduction)} rows, --reproduce):",
              f"  compared with {study.reference_source}"]
    lines += [f"  {row.label}: " + ", ".join(f"{k}={v}" for k, v in row.config.items())
              for row in study.reproduction]
    lines += ["", "config keys (--set key=value):"]
    lines += [f"  {key} = {field.default!r}  {field.expected()} — {field.help}"
              for key, field in study.fields.items()]
    return "\n".join(lines)


def listing() -> str:
    return "\n".join(f"{name:<20} {' '.join(load_study(name).description.split())}"
                     for name in list_studies())
