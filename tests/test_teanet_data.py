"""A user's spectra in their formats (spectra/formats.py, spectra/labelled.py) and every bad-input case
of issue 9: one error line naming the file (and row), exit 2, nothing created."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from spectra.errors import DataError
from spectra.formats import load_spectra
from spectra.labelled import RawSpectra, class_indices, prepare

AXIS = np.linspace(400.0, 4000.0, 40)


def _csv(path, rows, header=True):
    lines = (["label," + ",".join(f"{w:g}" for w in AXIS)] if header else []) + rows
    path.write_text("\n".join(lines) + "\n")
    return path


def _row(label, shift=0.0):
    return f"{label}," + ",".join(f"{v:.4f}" for v in np.sin(AXIS / 300 + shift) + 2)


def _rruff(folder, name, mineral, axis, header=True):
    lines = ([f"##NAMES={mineral}", "##RRUFFID=R050001", "##LOCALITY=Somewhere"] if header else [])
    lines += [f"{w:.2f}, {np.cos(w / 200) + 2:.4f}" for w in axis] + ["##END="]
    (folder / name).write_text("\n".join(lines) + "\n")


# --- the formats read ----------------------------------------------------------------------------

def test_csv_with_a_wavenumber_header_is_resampled_and_scaled(tmp_path):
    path = _csv(tmp_path / "s.csv", [_row("quartz"), _row("calcite", 1), _row("quartz", 0.5)])
    data = load_spectra("csv", path, length=64)
    assert data.x.shape == (3, 64) and data.x.dtype == np.float32
    assert data.class_names == ("calcite", "quartz") and data.y.tolist() == [1, 0, 1]
    assert data.wavenumbers[0] == pytest.approx(400) and data.wavenumbers[-1] == pytest.approx(4000)
    assert np.allclose(data.x.min(axis=1), 0) and np.allclose(data.x.max(axis=1), 1)


def test_csv_label_in_the_last_column_without_header(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("1,2,3,7\n3,2,1,5\n")
    data = load_spectra("csv", path, length=3, resample="none", scale="none", label_column=-1)
    assert data.class_names == ("5", "7") and data.y.tolist() == [1, 0]
    assert data.x.tolist() == [[1, 2, 3], [3, 2, 1]]


def test_resampling_is_linear_over_the_common_range():
    raw = RawSpectra([np.array([0.0, 10.0]), np.array([2.0, 4.0, 12.0])],
                     [np.array([0.0, 10.0]), np.array([1.0, 1.0, 1.0])], ["a", "b"], ["f1", "f2"], "x",
                     axis_origins=["f1", "f2"])
    data = prepare(raw, length=5, scale="none")
    assert data.wavenumbers.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]  # where both files have points
    assert data.x[0].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_integer_labels_sort_numerically():
    y, names = class_indices([10, 2, "10", np.int64(2)], ["r1", "r2", "r3", "r4"])
    assert names == ("2", "10") and y.tolist() == [1, 0, 1, 0]


def test_npz_with_wavenumbers(tmp_path):
    x = np.random.default_rng(0).random((4, 30))
    np.savez(tmp_path / "s.npz", X=x, y=np.array([3, 1, 3, 1]), wavenumbers=np.linspace(100, 200, 30))
    data = load_spectra("npz", tmp_path / "s.npz", length=16)
    assert data.class_names == ("1", "3") and data.length == 16 and data.wavenumbers[-1] == 200


def test_rruff_folder_classes_from_the_names_header(tmp_path):
    _rruff(tmp_path, "a.txt", "Quartz", np.arange(100, 1000, 10.0))
    _rruff(tmp_path, "b.txt", "Calcite", np.arange(150, 1200, 7.0))
    _rruff(tmp_path, "c.txt", "Quartz", np.arange(90, 990, 11.0))
    data = load_spectra("rruff", tmp_path, length=32)
    assert data.class_names == ("Calcite", "Quartz") and data.y.tolist() == [1, 0, 1]
    # b.txt starts last (150), c.txt ends first (90 + 11·81 = 981)
    assert data.wavenumbers[0] == pytest.approx(150) and data.wavenumbers[-1] == pytest.approx(981)


def test_teanet_pth_of_numpy_arrays_and_of_tensors(tmp_path):
    x = np.random.default_rng(0).random((6, 20)).astype(np.float32)
    y = np.array([0, 0, 1, 1, 2, 2])
    torch.save({"train_valid": (x, y), "test": (x[:3], y[:3])}, tmp_path / "a.pth")
    torch.save({"train_valid": (torch.from_numpy(x), torch.from_numpy(y)),
                "test": (torch.from_numpy(x[:3]), torch.from_numpy(y[:3]))}, tmp_path / "b.pth")
    for name in ("a.pth", "b.pth"):
        data = load_spectra("teanet_pth", tmp_path / name, length=20)
        assert data.x.shape == (9, 20) and data.is_test.tolist() == [False] * 6 + [True] * 3


# --- bad input: one line naming file and row ------------------------------------------------------

def _pth(path, content):
    torch.save(content, path)
    return path


X3 = np.ones((3, 5), dtype=np.float32)
BAD = {
    "a missing file": (lambda d: ("csv", d / "none.csv"), "none.csv: no such file"),
    "an empty file": (lambda d: ("csv", _write(d / "e.csv", "")), "e.csv: empty file"),
    "an empty npz": (lambda d: ("npz", _write(d / "e.npz", "")), "e.npz: empty file"),
    "ragged rows": (lambda d: ("csv", _write(d / "r.csv", "a,1,2,3\nb,1,2\n")),
                    "r.csv:2: 3 columns; expected 4"),
    "NaN": (lambda d: ("csv", _write(d / "n.csv", "a,1,2,3\nb,1,nan,3\n")), "n.csv:2: NaN or infinite"),
    "inf": (lambda d: ("csv", _write(d / "i.csv", "a,1,2,3\nb,1,inf,3\n")), "i.csv:2: NaN or infinite"),
    "text among the values": (lambda d: ("csv", _write(d / "t.csv", "a,1,2,3\nb,1,x,3\n")),
                              "t.csv:2: 'x' in column 3 is not a number"),
    "a fractional label": (lambda d: ("csv", _write(d / "f.csv", "a,1,2,3\n2.5,1,2,3\n")),
                           "f.csv:2: label 2.5 is neither a string nor an integer"),
    "boolean labels": (lambda d: ("npz", _npz(d / "b.npz", X3, np.array([True, False, True]))),
                       "b.npz: y holds bool"),
    "float labels": (lambda d: ("npz", _npz(d / "f.npz", X3, np.array([0.0, 1.5, 2.0]))),
                     "f.npz:row 2: label 1.5 is neither a string nor an integer"),
    "NaN in npz": (lambda d: ("npz", _npz(d / "n.npz", np.array([[1, 2], [np.nan, 1.0]]), np.array([0, 1]))),
                   "n.npz:row 2: NaN or infinite"),
    "npz without y": (lambda d: ("npz", _npz(d / "y.npz", X3, None)), "y.npz: no array 'y'"),
    "pickled objects in npz": (lambda d: ("npz", _npz(d / "o.npz", X3, np.array([1, "a", None], object))),
                               "o.npz: holds pickled objects"),
    "rruff without the class line": (lambda d: ("rruff", _rruff_folder(d, header=False)),
                                     "a.txt: no ##NAMES= header line"),
    "rruff ranges that do not overlap": (lambda d: ("rruff", _rruff_folder(d, far=True)),
                                         "do not overlap"),
    "rruff row of three values": (lambda d: ("rruff", _rruff_folder(d, extra="500, 1, 2")),
                                  "a.txt:8: 3 values; expected 2"),
    "an empty folder": (lambda d: ("rruff", _mkdir(d / "empty")), "empty: no .txt files"),
    "a .pth of other objects": (lambda d: ("teanet_pth", _pth(d / "o.pth", {"train_valid": (
        X3, np.array(["a", "b", "c"])), "test": (X3, np.zeros(3))})),
        "refused by torch.load(weights_only=True): it holds <class 'numpy.dtypes.StrDType'>"),
    "a .pth without test": (lambda d: ("teanet_pth", _pth(d / "t.pth", {"train_valid": (X3, np.zeros(3))})),
                            "expected a dict with 'train_valid' and 'test'"),
    "a .pth holding a dict of weights": (lambda d: ("teanet_pth", _pth(d / "w.pth", collections.OrderedDict(
        w=torch.zeros(2)))), "w.pth: holds w; expected a dict"),
    "a .pth of another pickle": (lambda d: ("teanet_pth", _pickle(d / "p.pth")),
                                 "p.pth: refused by torch.load(weights_only=True)"),
}


def _write(path, text):
    path.write_text(text)
    return path


def _npz(path, x, y):
    arrays = {"X": x} if y is None else {"X": x, "y": y}
    np.savez(path, **arrays)
    return path


def _mkdir(path):
    path.mkdir()
    return path


def _pickle(path):
    import pickle

    path.write_bytes(pickle.dumps(collections.Counter("abc")))
    return path


def _rruff_folder(directory, header=True, far=False, extra=None):
    folder = _mkdir(directory / "rruff")
    _rruff(folder, "a.txt", "Quartz", np.arange(100, 140, 10.0), header=header)
    if extra:
        text = (folder / "a.txt").read_text().replace("##END=", f"{extra}\n##END=")
        (folder / "a.txt").write_text(text)
    _rruff(folder, "b.txt", "Calcite", np.arange(300, 340, 10.0) if far else np.arange(100, 140, 10.0))
    return folder


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_files_are_one_line_naming_file_and_row(case, tmp_path):
    make, expected = BAD[case]
    fmt, path = make(tmp_path)
    with pytest.raises(DataError) as info:
        load_spectra(fmt, path)
    said = str(info.value)
    assert "\n" not in said and expected in said, said


# --- through the command line: exit 2, nothing created --------------------------------------------

CLI = {
    "fewer than two classes for the protocol": (
        lambda d: _write(d / "one.csv", "a,1,2,3\na,2,3,4\nb,1,1,1\n"), ["--set", "data.format=csv"],
        "one.csv: 1 class(es) with at least two spectra"),
    "ragged rows": (lambda d: _write(d / "r.csv", "a,1,2,3\nb,1,2\n"), ["--set", "data.format=csv"],
                    "r.csv:2: 3 columns; expected 4"),
    "a format without a test split under split": (
        lambda d: _write(d / "ok.csv", "a,1,2,3\na,2,3,4\n"),
        ["--set", "data.format=csv", "--set", "eval.protocol=split"], "expected leave_one_out"),
    "a path without a format": (lambda d: _write(d / "ok.csv", "a,1,2,3\n"), [],
                                "config key 'data.format'"),
}


@pytest.mark.parametrize("case", CLI, ids=list(CLI))
def test_bad_spectra_on_the_command_line_exit_2_and_create_nothing(case, tmp_path, monkeypatch, capsys):
    import platform.search

    make, extra, expected = CLI[case]
    path = make(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = platform.search.main(["teanet_masks", "--budget", "smoke", "--set", f"data.path={path}",
                                 "--set", "eval.protocol=leave_one_out", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert list(work.iterdir()) == [], "nothing created"
