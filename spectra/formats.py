"""Readers of labelled spectra in the formats users have them in (issue 9, part 1), all ending in
:func:`spectra.labelled.prepare`:

- ``csv``: one spectrum per row and a label column (``label_column``, default the first); optionally a
  first row of wavenumbers, recognised by an empty label cell or one of :data:`HEADER_WORDS`.
- ``npz``: arrays ``X`` [N, L], ``y`` [N] and optionally ``wavenumbers`` [L] (no pickled objects).
- ``rruff``: a folder of RRUFF processed ``*.txt`` files: ``##KEY=value`` header lines and two data
  columns (wavenumber, intensity; comma or space separated); the class is the ``##NAMES=`` mineral.
- ``teanet_pth``: the TeaNet code's saved dict ``{"train_valid": (X, y), "test": (X, y)}``, read with
  ``torch.load(weights_only=True)`` and exactly numpy's array types allowed (MODELS.md A1).

The driver reads a user's files once; nothing here runs on a worker (DESIGN.md "Data on a cluster").
Bad input raises :class:`DataError`: one line naming the file (and row) and what was expected.
"""

from __future__ import annotations

import csv
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from spectra.errors import DataError
from spectra.labelled import LabelledSpectra, RawSpectra, check_finite, prepare

FORMATS = ("csv", "npz", "rruff", "teanet_pth")
HEADER_WORDS = ("", "label", "labels", "class", "y", "target", "name", "mineral")


def load_spectra(fmt: str, path: str | Path, length: int = 1024, resample: str = "linear",
                 scale: str = "minmax", label_column: int = 0, class_key: str = "NAMES") -> LabelledSpectra:
    """Read ``path`` in format ``fmt`` and prepare it (one axis of ``length`` points, scaled)."""
    return prepare(read_raw(fmt, path, label_column, class_key), length, resample, scale)


def read_raw(fmt: str, path: str | Path, label_column: int = 0, class_key: str = "NAMES") -> RawSpectra:
    """The spectra of ``path`` in format ``fmt`` as read, each on its own axis, with their labels."""
    readers = {"csv": lambda p: read_csv(p, label_column), "npz": read_npz,
               "rruff": lambda p: read_rruff_folder(p, class_key), "teanet_pth": read_teanet_pth}
    if fmt not in readers:
        raise DataError(f"data.format {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return readers[fmt](path)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None
    if not text.strip():
        raise DataError(f"{path}: empty file")
    return text


def _number(cell: str, where: str, column: int) -> float:
    try:
        return float(cell)
    except ValueError:
        raise DataError(f"{where}: {cell.strip()[:40]!r} in column {column + 1} is not a number") from None


def _csv_label(cell: str) -> object:
    """A CSV label cell: an integer if it reads as one, a fraction stays a number (and is refused
    later as neither string nor integer), anything else is a string."""
    text = cell.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(path: Path, label_column: int = 0) -> RawSpectra:
    """Rows of ``label, v1, v2, ...`` (the label in ``label_column``; negative counts from the end)."""
    text = _read_text(path)
    rows = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), start=1)
            if any(cell.strip() for cell in row)]
    first, width = rows[0][0], len(rows[0][1])
    if width < 3:
        raise DataError(f"{path}:{rows[0][0]}: {width} columns; expected a label and at least 2 values")
    column = label_column % width if -width <= label_column < width else None
    if column is None:
        raise DataError(f"{path}: data.label_column {label_column} is outside the {width} columns")
    axis = None
    if rows[0][1][column].strip().lower() in HEADER_WORDS:  # a header row of wavenumbers
        number, row = rows.pop(0)
        axis = np.array([_number(c, f"{path}:{number}", i) for i, c in enumerate(row) if i != column])
        check_finite(axis, f"{path}:{number} (wavenumbers)")
        if not rows:
            raise DataError(f"{path}: a header row and no spectra")
    values, labels, origins = [], [], []
    for number, row in rows:
        where = f"{path}:{number}"
        if len(row) != width:
            raise DataError(f"{where}: {len(row)} columns; expected {width}, as in row {first}")
        spectrum = np.array([_number(c, where, i) for i, c in enumerate(row) if i != column])
        check_finite(spectrum, where)
        values.append(spectrum)
        labels.append(_csv_label(row[column]))
        origins.append(where)
    if axis is None:
        axis = np.arange(width - 1, dtype=np.float64)
    return RawSpectra([axis], values, labels, origins, str(path))


def read_npz(path: Path) -> RawSpectra:
    """Arrays ``X``, ``y`` and optional ``wavenumbers``; object arrays are refused (no pickle)."""
    _read_text_free_check(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as error:  # object arrays need pickle
        raise DataError(f"{path}: holds pickled objects ({error}); expected numeric X and "
                        "integer or string y") from None
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: not an .npz archive ({error})") from None
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: no array {missing[0]!r}; expected X [N, L], y [N] and optionally "
                        f"wavenumbers [L], found {', '.join(arrays) or 'nothing'}")
    x, y = arrays["X"], arrays["y"]
    axis = arrays.get("wavenumbers")
    return _from_arrays(path, x, y, axis)


def _read_text_free_check(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")


def _from_arrays(path: Path | str, x: np.ndarray, y: np.ndarray, axis: np.ndarray | None,
                 where: str = "", is_test: list[bool] | None = None) -> RawSpectra:
    """Check the shapes and kinds of (X, y[, wavenumbers]) and make them RawSpectra rows."""
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise DataError(f"{path}{where}: X has shape {list(x.shape)}; expected [N, L] with N >= 1, L >= 2")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{path}{where}: X holds {x.dtype}; expected real numbers")
    if y.shape != (x.shape[0],):
        raise DataError(f"{path}{where}: y has shape {list(y.shape)}; expected [{x.shape[0]}], one per row "
                        "of X")
    if y.dtype.kind not in "iuUf":
        raise DataError(f"{path}{where}: y holds {y.dtype}; expected integer or string labels")
    if axis is None:
        axis = np.arange(x.shape[1], dtype=np.float64)
    elif axis.shape != (x.shape[1],):
        raise DataError(f"{path}{where}: wavenumbers has shape {list(axis.shape)}; expected [{x.shape[1]}]")
    axis = axis.astype(np.float64)
    check_finite(axis, f"{path}{where} (wavenumbers)")
    origins = [f"{path}{where}:row {i + 1}" for i in range(len(x))]
    values = [row.astype(np.float64) for row in x]
    for row, origin in zip(values, origins, strict=True):
        check_finite(row, origin)
    return RawSpectra([axis], values, list(y.tolist()), origins, str(path), is_test)


def read_rruff_file(path: Path, class_key: str = "NAMES") -> tuple[np.ndarray, np.ndarray, str]:
    """Wavenumbers, intensities and the class (the ``##<class_key>=`` value) of one RRUFF file."""
    header: dict[str, str] = {}
    rows: list[tuple[float, float]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("##"):
            key, _, value = line[2:].partition("=")
            if key.strip().upper() == "END":
                break
            header[key.strip().upper()] = value.strip()
            continue
        cells = line.replace(",", " ").split()
        if len(cells) != 2:
            raise DataError(f"{path}:{number}: {len(cells)} values; expected 2 (wavenumber, intensity)")
        pair = (_number(cells[0], f"{path}:{number}", 0), _number(cells[1], f"{path}:{number}", 1))
        check_finite(np.array(pair), f"{path}:{number}")
        rows.append(pair)
    name = header.get(class_key.upper(), "")
    if not name:
        raise DataError(f"{path}: no ##{class_key}= header line naming the class")
    if len(rows) < 2:
        raise DataError(f"{path}: {len(rows)} data rows; expected at least 2 (wavenumber, intensity)")
    table = np.array(rows)
    return table[:, 0], table[:, 1], name


def read_rruff_folder(folder: Path, class_key: str = "NAMES") -> RawSpectra:
    """Every ``*.txt`` of a folder (sorted by name), one spectrum each, each on its own axis."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder (data.format=rruff reads a folder of *.txt files)")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
    if not paths:
        raise DataError(f"{folder}: no .txt files")
    axes, values, labels = [], [], []
    for path in paths:
        axis, intensity, name = read_rruff_file(path, class_key)
        axes.append(axis)
        values.append(intensity)
        labels.append(name)
    origins = [str(p) for p in paths]
    return RawSpectra(axes, values, labels, origins, str(folder), axis_origins=origins)


def _safe_numpy_globals() -> list:
    """Exactly what unpickling numpy arrays of numbers needs: the array reconstructor, ndarray, dtype
    and the numeric dtype classes (strings and objects are not allowed)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    numeric = [np.dtypes.Float32DType, np.dtypes.Float64DType, np.dtypes.Float16DType,
               np.dtypes.Int64DType, np.dtypes.Int32DType, np.dtypes.Int16DType, np.dtypes.Int8DType,
               np.dtypes.UInt8DType]
    return [_reconstruct, np.ndarray, np.dtype, *numeric]


def _refusal(message: str) -> str:
    """The reason in torch's multi-line weights_only refusal (the type it would not build)."""
    for pattern in (r"Unsupported global: GLOBAL (\S+)", r"but got (<class '[^']+'>|\S+)"):
        found = re.search(pattern, message)
        if found:
            return f"it holds {found.group(1)}, which is not an allowed type"
    return (message.strip().splitlines() or ["unreadable"])[0][:200]


def read_teanet_pth(path: Path) -> RawSpectra:
    """The TeaNet code's dict of ``train_valid`` and ``test`` (each ``(X, y)``); spectra of the test
    part are marked ``is_test`` (the split the repo expects ready-made)."""
    import pickle

    import torch

    _read_text_free_check(path)
    try:
        with torch.serialization.safe_globals(_safe_numpy_globals()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # the refusal says it
            content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        said = _refusal(str(error))
        raise DataError(f"{path}: refused by torch.load(weights_only=True): {said}; expected "
                        "{'train_valid': (X, y), 'test': (X, y)} of numeric arrays") from None
    if not isinstance(content, dict) or not {"train_valid", "test"} <= set(content):
        found = ", ".join(map(str, content)) if isinstance(content, dict) else type(content).__name__
        raise DataError(f"{path}: holds {found}; expected a dict with 'train_valid' and 'test', each (X, y)")
    parts = []
    for key in ("train_valid", "test"):
        part = content[key]
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise DataError(f"{path}: '{key}' is not a pair (X, y)")
        x, y = (t.numpy() if isinstance(t, torch.Tensor) else t for t in part)
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise DataError(f"{path}: '{key}' holds {type(x).__name__}, {type(y).__name__}; expected arrays")
        parts.append(_from_arrays(path, x, y, None, f"['{key}']", [key == "test"] * len(x)))
    train_valid, test = parts
    if train_valid.axes[0].shape != test.axes[0].shape:
        raise DataError(f"{path}: 'test' spectra have {len(test.axes[0])} points, 'train_valid' "
                        f"{len(train_valid.axes[0])}; expected the same length")
    return RawSpectra(train_valid.axes, train_valid.values + test.values, train_valid.labels + test.labels,
                      train_valid.origins + test.origins, str(path), train_valid.is_test + test.is_test)
