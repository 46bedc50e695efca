"""Studies: one module per study, each defining ``STUDY`` (a :class:`Study`). Plain data and functions.

    from search_spaces import list_studies, load_study
    list_studies()                  # ['teanet_masks']
    study = load_study("teanet_masks")
"""

from __future__ import annotations

import importlib
import pkgutil

from search_spaces._study import Budget, GridRow, Objective, Study
from search_spaces.reference import read_reference

__all__ = ["Budget", "GridRow", "Objective", "Study", "list_studies", "load_study", "read_reference"]


class UnknownStudyError(LookupError):
    """No study module of that name."""


def list_studies() -> list[str]:
    """Names of the study modules (every public module in this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
                  and m.name != "reference")


def load_study(name: str) -> Study:
    """The ``STUDY`` of ``search_spaces/<name>.py``; an unknown name lists the known ones."""
    if name not in list_studies():
        raise UnknownStudyError(f"unknown study {name!r}; known studies: {', '.join(list_studies())}")
    return importlib.import_module(f"search_spaces.{name}").STUDY
