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


# Issue 11: a window, anchor ranges, a 2θ range and the published archive, all checked on the driver.
RAMP_CASES = {
    "a window outside the series": (["--set", "data.window=0:400"], "'data.window': '0:400' reaches past"),
    "anchors outside the window": (["--set", "data.window=0:300"],
                                   "'data.class1': 200:341:10 reaches outside"),
    "anchors out of order": (["--set", "data.anchors=200:341:10,0:151:10"], "not after range 1"),
    "overlapping anchors": (["--set", "data.anchors=0:151:10,150:341:10"], "not after range 1 (0:151:10)"),
    "a 2θ range outside the data": (["--set", "data.two_theta=5:20"], "outside the data's 2θ range"),
    "anchors and class ranges both": (["--set", "data.anchors=0:151:10,200:341:10",
                                       "--set", "data.class1=200:301:10"], "given together with"),
    "anchors and the default class range both": (["--set", "data.anchors=0:151:10,200:341:10",
                                                  "--set", "data.class0=0:151:10"],
                                                 "data.anchors given together with data.class0"),
}


@pytest.mark.parametrize("case", RAMP_CASES, ids=list(RAMP_CASES))
def test_bad_ramp_selections_are_one_error_line_exit_2_and_create_nothing(case, tmp_path, monkeypatch,
                                                                          capsys):
    import platform.search

    extra, expected = RAMP_CASES[case]
    monkeypatch.chdir(tmp_path)
    code = platform.search.main(["hed_architectures", "--budget", "quick", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert list(tmp_path.iterdir()) == [], "nothing created"


def _ramp_archive(tmp_path, name: str, files: dict[str, list[str]] | None):
    import py7zr

    path = tmp_path / name
    with py7zr.SevenZipFile(path, "w") as archive:
        for member, rows in (files or {}).items():
            archive.writestr("\n".join(["# a header line", *rows]) + "\n", f"ramp/{member}")
    return path


ARCHIVES = {
    "an empty archive": (lambda tmp: _ramp_archive(tmp, "empty.7z", None), "empty.7z: no .xy or .xye files"),
    "a corrupt archive": (lambda tmp: _corrupt(tmp), "bad.7z: not a readable .7z archive"),
    "a bad file in the archive": (lambda tmp: _ramp_archive(tmp, "ramp.7z", _many([*GOOD_ROWS[:2], "1 x"])),
                                  "s_00001_m1_0001.xy:4"),
}


def _corrupt(tmp_path):
    good = _ramp_archive(tmp_path, "good.7z", _many(GOOD_ROWS)).read_bytes()
    (tmp_path / "bad.7z").write_bytes(good[: len(good) // 3])
    return tmp_path / "bad.7z"


@pytest.mark.parametrize("case", ARCHIVES, ids=list(ARCHIVES))
def test_a_bad_archive_is_one_error_line_exit_2_and_creates_nothing(case, tmp_path, monkeypatch, capsys):
    import platform.search

    make, expected = ARCHIVES[case]
    archive = make(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = platform.search.main(["hed_architectures", "--budget", "quick", "--set", f"data.path={archive}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert list(work.iterdir()) == [], "nothing created"


def test_through_the_command_line_anchors_outside_the_window_exit_2_and_no_runs_folder(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "platform.search", "hed_architectures", "--budget", "smoke",
                           "--set", "data.window=10:70", "--set", "data.anchors=0:31:5,50:76:5"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True,
                          text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "'data.anchors' (range 1): 0:31:5 reaches outside the window 10:70" in lines[0]
    assert not (tmp_path / "runs").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("anchors", ["", "0:151:10,200:341:10"], ids=["class ranges", "three ranges"])
def test_an_exported_config_is_taken_back_whole(anchors, tmp_path):
    """An export holds every key, data.anchors and the class ranges both: --config takes it back (only
    what is typed with --set is held to 'one or the other')."""
    import yaml

    from platform.options import parse_request
    from search_spaces import load_study

    exported = load_study("hed_architectures").config_for("quick", {"data.anchors": anchors})
    path = tmp_path / "trial-0001.yaml"
    path.write_text(yaml.safe_dump(exported))
    request = parse_request(["hed_architectures", "--config", str(path)])
    assert request.fixed == exported
