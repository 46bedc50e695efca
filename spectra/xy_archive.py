"""The published HED data as shipped: a ``.7z`` archive of ``.xy`` files (Zenodo record 4424866,
``Mg20Fe80O_ramp_xyfiles_1_349_azimuthal_integrated.7z``; MODELS.md B1), read with ``py7zr``.

The ``.xy``/``.xye`` members (in any folder of the archive) are decompressed into memory, never onto
disk, and go through the same reading and checks as a folder's files (spectra.xy): an archive reads
like the folder it holds. A corrupt archive, or one without such files, is one line naming it.
"""

from __future__ import annotations

import lzma
from pathlib import Path, PurePosixPath

import py7zr
from py7zr.io import BytesIOFactory

from spectra.errors import DataError
from spectra.xy import DEFAULT_RUN_PATTERN, SUFFIXES, Series, in_run_order, parse_xy, stack_series

_MAX_MEMBER_BYTES = 1 << 30  # per file: an .xy pattern is tens of kB; a larger member is not one


def load_xy_archive(path: str | Path, header_lines: int | None = None,
                    run_pattern: str = DEFAULT_RUN_PATTERN) -> Series:
    """The ``.xy``/``.xye`` files of the ``.7z`` archive ``path``, ordered by run number, as one Series."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such archive")
    texts = _members(path)
    ordered = in_run_order(list(texts), run_pattern)
    return stack_series(ordered, lambda name: parse_xy(PurePosixPath(name).name, texts[name], header_lines))


def _members(path: Path) -> dict[str, str]:
    """Member name → text of every .xy/.xye file of the archive."""
    try:
        with py7zr.SevenZipFile(path, mode="r") as archive:
            if archive.needs_password():
                raise DataError(f"{path.name}: the archive is encrypted; expected a plain .7z of .xy files")
            names = [info.filename for info in archive.list()
                     if not info.is_directory and PurePosixPath(info.filename).suffix.lower() in SUFFIXES]
            if not names:
                raise DataError(f"{path.name}: no .xy or .xye files in the archive")
            factory = BytesIOFactory(_MAX_MEMBER_BYTES)
            archive.extract(targets=names, factory=factory)
    except DataError:
        raise
    except (py7zr.exceptions.ArchiveError, lzma.LZMAError, OSError, EOFError, ValueError, KeyError) as error:
        said = " ".join(str(error).split()) or type(error).__name__
        raise DataError(f"{path.name}: not a readable .7z archive ({said[:120]})") from None
    texts = {}
    for name in names:
        product = factory.get(name)
        product.seek(0)
        texts[name] = product.read().decode("utf-8", errors="replace")
    return texts
