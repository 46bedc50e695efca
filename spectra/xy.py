"""Reading a folder of powder-diffraction patterns in the published HED format (MODELS.md B1).

Each ``.xy`` file holds one pattern: a header, then rows of two whitespace-separated columns, 2θ in
degrees and intensity (``.xye`` adds a third column, σ, which is ignored). The Zenodo HED files have a
25-line header; by default the header is found automatically as the leading lines that are not a row of
2 or 3 numbers. Files are ordered by their run number (see ``DEFAULT_RUN_PATTERN``). The files may come
in a folder or, as published, in a ``.7z`` archive (:func:`load_series`).

The driver reads a user's folder once and hands the arrays to trials (DESIGN.md "Data on a cluster"):
nothing here should run on a worker that does not have the files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spectra.errors import DataError

SUFFIXES = (".xy", ".xye")
# The run number is the LAST integer group of the file stem. The HED files are
# l2_fe80mg20_ramp_00001_m1_0001.xy … l2_fe80mg20_ramp_00001_m1_0349.xy: 00001 is the scan and m1 the
# detector module (both constant), the trailing group is the frame of the ramp (the repo loops over it).
DEFAULT_RUN_PATTERN = r"(\d+)\D*$"
_GRID_TOLERANCE = 1e-3  # two 2θ grids agree when no point differs by more than this fraction of a step


@dataclass(frozen=True)
class Series:
    """A time-ordered series of patterns on one 2θ grid."""

    two_theta: np.ndarray  # float64 [L], degrees
    intensity: np.ndarray  # float32 [N, L]
    names: list[str]  # file names, in run order

    def __len__(self) -> int:
        return len(self.names)


def _numbers(line: str) -> list[float] | None:
    """The floats of a whitespace-separated line, or None when some field is not a number."""
    try:
        return [float(field) for field in line.split()]
    except ValueError:
        return None


def _is_data_row(line: str) -> bool:
    values = _numbers(line)
    return values is not None and len(values) in (2, 3)


def _columns(count: int) -> str:
    return f"{count} column{'' if count == 1 else 's'}, expected 2 (2θ, intensity) or 3 (.xye)"


def _find_header(name: str, lines: list[str]) -> int:
    """Number of leading lines that are not a row of 2 or 3 numbers."""
    for number, line in enumerate(lines):
        if _is_data_row(line):
            return number
    # No data row: say why, if some line is numeric with the wrong number of columns.
    for number, line in enumerate(lines, start=1):
        values = _numbers(line)
        if values:
            raise DataError(f"{name}:{number}: {_columns(len(values))}")
    raise DataError(f"{name}: no data rows (expected rows of 2θ and intensity after the header)")


def _row_error(name: str, lines: list[str], header_lines: int) -> DataError:
    """The first bad row after the header, as a one-line error (slow path, only when parsing failed)."""
    width = None
    for number in range(header_lines + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        values = _numbers(line)
        if values is None:
            return DataError(f"{name}:{number}: not a row of numbers: {line.strip()[:60]!r}")
        if len(values) not in (2, 3):
            return DataError(f"{name}:{number}: {_columns(len(values))}")
        width = width or len(values)
        if len(values) != width:
            return DataError(f"{name}:{number}: {len(values)} columns, but the first data row has {width}")
    return DataError(f"{name}: could not read the data rows")


def read_xy(path: str | Path, header_lines: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """2θ and intensity (both float64 [L]) of one ``.xy``/``.xye`` file.

    ``header_lines=None`` finds the header (leading lines that are not 2 or 3 numbers); an integer skips
    exactly that many lines. Raises ``DataError`` naming the file (and line) on bad content.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DataError(f"{path.name}: cannot read ({error.strerror or error})") from None
    return parse_xy(path.name, text, header_lines)


def parse_xy(name: str, text: str, header_lines: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """2θ and intensity of the content ``text`` of the file ``name`` (as :func:`read_xy`)."""
    lines = text.splitlines()
    if header_lines is None:
        header_lines = _find_header(name, lines)
    elif header_lines < 0:
        raise DataError(f"header_lines: expected an integer >= 0, got {header_lines}")
    body = [(number, line) for number, line in enumerate(lines, start=1) if number > header_lines]
    rows = [(number, line) for number, line in body if line.strip()]
    if not rows:
        raise DataError(f"{name}: no data rows after {header_lines} header lines")
    try:
        table = np.loadtxt([line for _, line in rows], dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        raise _row_error(name, lines, header_lines) from None
    if table.shape[1] not in (2, 3):
        raise _row_error(name, lines, header_lines)
    bad = ~np.isfinite(table[:, :2]).all(axis=1)
    if bad.any():
        number = rows[int(np.argmax(bad))][0]
        raise DataError(f"{name}:{number}: NaN or infinite value")
    return table[:, 0].copy(), table[:, 1].copy()


def run_number(name: str, run_pattern: str = DEFAULT_RUN_PATTERN) -> int:
    """The run number of a file name: group 1 of ``run_pattern`` searched in the stem."""
    stem = Path(name).stem
    match = re.search(run_pattern, stem)
    if match is None:
        raise DataError(f"{name}: no run number in the name (run_pattern {run_pattern!r} does not match)")
    try:
        return int(match.group(1))
    except (IndexError, ValueError):
        raise DataError(
            f"{name}: run_pattern {run_pattern!r} must capture the run number as group 1"
        ) from None


def load_xy_folder(
    folder: str | Path, header_lines: int | None = None, run_pattern: str = DEFAULT_RUN_PATTERN
) -> Series:
    """All ``.xy``/``.xye`` files of ``folder``, ordered by run number, as one ``Series``.

    Every file must have the first file's 2θ grid (same number of points, same values). Raises
    ``DataError`` (one line naming the file) on an empty folder, duplicate run numbers or bad files.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    paths = {p.name: p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()}
    if not paths:
        raise DataError(f"{folder}: no .xy or .xye files")
    ordered = in_run_order(list(paths), run_pattern)
    return stack_series(ordered, lambda name: read_xy(paths[name], header_lines))


def load_series(path: str | Path, header_lines: int | None = None,
                run_pattern: str = DEFAULT_RUN_PATTERN) -> Series:
    """A folder of ``.xy``/``.xye`` files, or a ``.7z`` archive of them (the published HED data as
    shipped, spectra.xy_archive), with the same checks."""
    if Path(path).suffix.lower() == ".7z":
        from spectra.xy_archive import load_xy_archive

        return load_xy_archive(path, header_lines, run_pattern)
    return load_xy_folder(path, header_lines, run_pattern)


def in_run_order(names: list[str], run_pattern: str = DEFAULT_RUN_PATTERN) -> list[str]:
    """File names ordered by run number; two files of one run number are an error."""
    runs: dict[int, str] = {}
    for name in names:
        run = run_number(name, run_pattern)
        if run in runs:
            first, second = sorted([runs[run], name])
            raise DataError(f"{Path(second).name}: run number {run} again (also {Path(first).name}); "
                            f"check run_pattern {run_pattern!r}")
        runs[run] = name
    return [runs[run] for run in sorted(runs)]


def stack_series(ordered: list[str], read: Callable[[str], tuple[np.ndarray, np.ndarray]]) -> Series:
    """The files ``ordered`` (names, read one at a time by ``read``) as one ``Series``; each file must
    have the first file's 2θ grid."""
    first_name = Path(ordered[0]).name
    two_theta, first = read(ordered[0])
    intensity = np.empty((len(ordered), len(two_theta)), dtype=np.float32)
    intensity[0] = first
    step = np.abs(np.diff(two_theta)).min() if len(two_theta) > 1 else 1.0
    for row, name in enumerate(ordered[1:], start=1):
        grid, values = read(name)
        shown = Path(name).name
        if len(grid) != len(two_theta):
            raise DataError(f"{shown}: {len(grid)} points, but the first file {first_name} has "
                            f"{len(two_theta)}")
        off = np.abs(grid - two_theta)
        if off.max() > _GRID_TOLERANCE * step:
            at = int(np.argmax(off))
            raise DataError(
                f"{shown}: 2θ grid differs from {first_name}'s "
                f"(point {at}: {grid[at]:.6g} vs {two_theta[at]:.6g})"
            )
        intensity[row] = values
    return Series(two_theta=two_theta, intensity=intensity, names=[Path(n).name for n in ordered])
