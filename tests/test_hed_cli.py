"""Bad input to the HED studies: one clear error line, exit 2, nothing created (issue "HED", bad input)."""

from __future__ import annotations

import pytest

GOOD_ROWS = ["10.0 1.0", "10.1 2.0", "10.2 3.0"]


def _folder(tmp_path, files: dict[str, list[str]]):
    folder = tmp_path / "series"
    folder.mkdir()
    for name, rows in files.items():
        (folder / name).write_text("\n".join(["# a header line"] * 3 + rows) + "\n")
    return folder


def _many(rows_of_first: list[str]) -> dict[str, list[str]]:
    files = {f"s_00001_m1_{run:04d}.xy": GOOD_ROWS for run in range(2, 80)}
    files["s_00001_m1_0001.xy"] = rows_of_first
    return files


CASES = {
    "overlapping anchors": (None, ["--set", "data.class1=100:200:10"], "share"),
    "anchors outside the series": (None, ["--set", "data.class1=200:400:10"], "the series has 349 spectra"),
    "an empty class": (None, ["--set", "data.class1=200:200:10"], "at least one spectrum"),
    "zero bins": (None, ["--set", "model.name=binned_fcnn", "--set", "model.binned_fcnn.bins=0"], "bins"),
    "bins beyond the spectrum": (None, ["--set", "model.name=binned_fcnn",
                                        "--set", "model.binned_fcnn.bins=5000"], "bins"),
    "no such model": (None, ["--set", "model.name=resnet99"], "'model.name': expected one of"),
    "an empty folder": ({}, [], "no .xy or .xye files"),
    "a file with other points": (_many(GOOD_ROWS[:2]), [], "s_00001_m1_0001.xy"),
    "non-numeric rows": (_many([*GOOD_ROWS[:2], "10.2 abc"]), [], "s_00001_m1_0001.xy:6"),
    "NaN": (_many([*GOOD_ROWS[:2], "10.2 nan"]), [], "s_00001_m1_0001.xy:6"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_hed_input_is_one_error_line_exit_2_and_creates_nothing(case, tmp_path, monkeypatch, capsys):
    import platform.search

    files, extra, expected = CASES[case]
    args = ["hed_architectures", "--budget", "quick", *extra]
    if files is not None:
        args += ["--set", f"data.path={_folder(tmp_path, files)}"]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = platform.search.main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert list(work.iterdir()) == [], "nothing created"
