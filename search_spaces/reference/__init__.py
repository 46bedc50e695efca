"""The papers' published tables, shipped with the project (see README.md here for their sources)."""

from __future__ import annotations

import csv
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def read_reference(table: str) -> list[dict[str, str]]:
    """Rows of ``<table>.csv`` as dicts of strings, e.g. ``read_reference("teanet_table4_masks")``."""
    with open(_HERE / f"{table}.csv", newline="") as handle:
        return list(csv.DictReader(handle))
