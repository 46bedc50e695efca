"""Reading .xy/.xye folders (spectra/xy.py): header detection, run order, formats and every error."""

import numpy as np
import pytest

from spectra.errors import DataError
from spectra.xy import load_xy_folder, read_xy, run_number

GRID = np.round(np.linspace(9.5604, 9.5604 + 0.003975 * 11, 12), 6)  # 12 points on the HED step
# 25 header lines in the manner of an azimuthal-integration export: comments, a bare count, column names.
HEADER = (
    [
        "# == pyFAI calibration ==",
        "# Distance Sample to Detector: 0.2105 m",
        "# PONI: 1.023e-01, 1.011e-01 m",
        "# Rotations: 0.001 0.002 0.000 rad",
        "# Wavelength: 4.959e-11 m",
        "4023",
    ]
    + [f"# detector setting {i}: value {i}.5 units" for i in range(18)]
    + ["#  2th_deg             I"]
)
NAME = "l2_fe80mg20_ramp_00001_m1_{:04d}.xy"


def _write(path, intensity, grid=GRID, sigma=False, header=HEADER):
    rows = [
        f"{t:.6f} {v:.6e}" + (f" {abs(v) ** 0.5:.3e}" if sigma else "")
        for t, v in zip(grid, intensity, strict=True)
    ]
    path.write_text("\n".join([*header, *rows]) + "\n")
    return path


def _series(tmp_path, runs, **kwargs):
    """Write one file per run (in the order given), intensity = run number + point index / 100."""
    for run in runs:
        _write(tmp_path / NAME.format(run), run + np.arange(len(GRID)) / 100, **kwargs)
    return tmp_path


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and isinstance(caught.value, ValueError)
    return message


def test_header_is_detected_and_files_are_ordered_by_run(tmp_path):
    series = load_xy_folder(_series(tmp_path, [3, 1, 349, 2, 10]))
    assert series.names == [NAME.format(run) for run in (1, 2, 3, 10, 349)]
    assert series.two_theta.dtype == np.float64 and series.intensity.dtype == np.float32
    assert series.intensity.shape == (5, len(GRID)) and len(series) == 5
    np.testing.assert_allclose(series.two_theta, GRID)
    np.testing.assert_allclose(series.intensity[:, 0], [1, 2, 3, 10, 349])
    np.testing.assert_allclose(series.intensity[1], 2 + np.arange(len(GRID)) / 100, rtol=1e-6)


def test_order_is_numeric_not_by_name(tmp_path):
    for run in (10, 9, 100):
        _write(tmp_path / f"scan_{run}.xy", np.full(len(GRID), float(run)))
    assert load_xy_folder(tmp_path).names == ["scan_9.xy", "scan_10.xy", "scan_100.xy"]


def test_run_number_rule():
    assert run_number("l2_fe80mg20_ramp_00001_m1_0349.xy") == 349  # the frame, not the scan (00001)
    assert run_number("frame7.xye") == 7
    assert run_number("a_12_m1_0003.xy", r"_(\d+)_m\d+_\d+$") == 12
    assert "no run number" in _error(run_number, "background.xy")
    assert "group 1" in _error(run_number, "a_1.xy", r"\d+")


def test_xye_and_explicit_header(tmp_path):
    _series(tmp_path, [1, 2], sigma=True)
    for path in tmp_path.iterdir():
        path.rename(path.with_suffix(".xye"))
    series = load_xy_folder(tmp_path, header_lines=25)
    assert series.names == [NAME.format(1) + "e", NAME.format(2) + "e"]
    np.testing.assert_allclose(series.intensity[:, 0], [1, 2])  # σ ignored
    two_theta, intensity = read_xy(tmp_path / (NAME.format(1) + "e"))
    assert two_theta.shape == intensity.shape == (len(GRID),)


def test_explicit_header_lines_override_detection(tmp_path):
    # A header whose last line looks like data: only an explicit count can skip it.
    path = _write(tmp_path / "a_1.xy", np.ones(len(GRID)), header=["# title", "0.5 0.5"])
    assert len(read_xy(path)[0]) == len(GRID) + 1
    two_theta, _ = read_xy(path, header_lines=2)
    np.testing.assert_allclose(two_theta, GRID)


def test_empty_folder_and_missing_folder(tmp_path):
    assert "no .xy or .xye files" in _error(load_xy_folder, tmp_path)
    (tmp_path / "notes.txt").write_text("1 2\n")
    assert "no .xy or .xye files" in _error(load_xy_folder, tmp_path)
    assert "not a folder" in _error(load_xy_folder, tmp_path / "absent")


def test_duplicate_run_numbers(tmp_path):
    # The scan-number pattern gives every HED frame the run number 1.
    _series(tmp_path, [1, 2])
    message = _error(load_xy_folder, tmp_path, run_pattern=r"_(\d+)_m\d+_\d+$")
    assert "run number 1 again" in message and NAME.format(1) in message and NAME.format(2) in message


def test_point_count_differs(tmp_path):
    _series(tmp_path, [1])
    _write(tmp_path / NAME.format(2), np.ones(10), grid=GRID[:10])
    message = _error(load_xy_folder, tmp_path)
    assert message == f"{NAME.format(2)}: 10 points, but the first file {NAME.format(1)} has 12"


def test_grid_differs(tmp_path):
    _series(tmp_path, [1])
    _write(tmp_path / NAME.format(2), np.ones(len(GRID)), grid=GRID + 0.001)
    assert _error(load_xy_folder, tmp_path).startswith(
        f"{NAME.format(2)}: 2θ grid differs from {NAME.format(1)}"
    )


@pytest.mark.parametrize(
    ("row", "expected"),
    [  # the 4th data row, after the 25 header lines: line 29
        ("9.6 abc", "a_1.xy:29: not a row of numbers: '9.6 abc'"),
        ("9.6 nan", "a_1.xy:29: NaN or infinite value"),
        ("9.6 -inf", "a_1.xy:29: NaN or infinite value"),
        ("9.6", "a_1.xy:29: 1 column, expected 2 (2θ, intensity) or 3 (.xye)"),
        ("9.6 1 2 3", "a_1.xy:29: 4 columns, expected 2 (2θ, intensity) or 3 (.xye)"),
        ("9.6 1 0.1", "a_1.xy:29: 3 columns, but the first data row has 2"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, expected):
    path = _write(tmp_path / "a_1.xy", np.ones(len(GRID)))
    lines = path.read_text().splitlines()
    lines[28] = row
    path.write_text("\n".join(lines) + "\n")
    assert _error(load_xy_folder, tmp_path) == expected


def test_fewer_than_two_columns(tmp_path):
    (tmp_path / "a_1.xy").write_text("# header\n1.0\n2.0\n3.0\n")
    assert _error(load_xy_folder, tmp_path) == "a_1.xy:2: 1 column, expected 2 (2θ, intensity) or 3 (.xye)"


def test_no_data_rows(tmp_path):
    (tmp_path / "a_1.xy").write_text("# only a header\n# and nothing else\n")
    assert _error(load_xy_folder, tmp_path).startswith("a_1.xy: no data rows")
    assert "no data rows after 25 header lines" in _error(
        read_xy, _write(tmp_path / "b_2.xy", [], grid=[]), 25
    )


# The published HED data as shipped: a .7z of .xy files (spectra/xy_archive.py).


def _folder(path, runs):
    path.mkdir()
    return _series(path, runs)


def _archive(tmp_path, folder, name="ramp.7z", arcname="Mg20Fe80O_ramp_xyfiles"):
    import py7zr

    path = tmp_path / name
    with py7zr.SevenZipFile(path, "w") as archive:
        if folder is not None:
            archive.writeall(folder, arcname)
    return path


def test_a_7z_of_xy_files_reads_like_the_folder_it_holds(tmp_path):
    from spectra.xy import load_series

    folder = _folder(tmp_path / "series", [3, 1, 2, 10])
    (folder / "notes.txt").write_text("not a pattern")
    packed = load_series(_archive(tmp_path, folder))
    unpacked = load_series(folder)
    assert packed.names == unpacked.names == [NAME.format(run) for run in (1, 2, 3, 10)]
    np.testing.assert_array_equal(packed.intensity, unpacked.intensity)
    np.testing.assert_array_equal(packed.two_theta, unpacked.two_theta)


def test_an_archive_gets_the_folders_checks(tmp_path):
    from spectra.xy import load_series

    folder = _folder(tmp_path / "series", [1, 2])
    _write(folder / NAME.format(3), np.ones(len(GRID) - 1), grid=GRID[:-1])
    with pytest.raises(DataError, match=f"{NAME.format(3)}: 11 points, but the first file"):
        load_series(_archive(tmp_path, folder))


def test_an_empty_or_corrupt_archive_is_one_line_naming_it(tmp_path):
    from spectra.xy import load_series

    empty = _archive(tmp_path, None, "empty.7z")
    with pytest.raises(DataError, match="empty.7z: no .xy or .xye files in the archive"):
        load_series(empty)
    good = _archive(tmp_path, _folder(tmp_path / "series", [1, 2, 3]))
    for name, content in [("garbage.7z", b"not an archive at all" * 20),
                          ("truncated.7z", good.read_bytes()[: len(good.read_bytes()) // 2])]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=f"{name}: not a readable .7z archive") as caught:
            load_series(tmp_path / name)
        assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match="missing.7z: no such archive"):
        load_series(tmp_path / "missing.7z")
