"""``python -m platform.predict RUN_ID --data PATH``: classify new spectra with the model a run keeps.

    python -m platform.predict 69b7d8de9f364fe8b50310dbe2966294 --data /data/new_ramp
    python -m platform.predict RUN_ID --data spectra.npy --output predictions.csv

The best trial of every search keeps its weights and config (platform.best_model); the run id is in the
search's summary (tag ``best_model_run`` of the parent run). The networks are rebuilt from the config
through models.registry and fed the spectra as the trial fed its test set:

- HED studies: a folder (or ``.7z`` archive) of ``.xy``/``.xye`` files (a time-ordered series, run number
  last in the name), cropped to the trial's ``data.two_theta`` and baseline-corrected as in training; the
  table has each spectrum's label and probability, then the boundary and the classification confidence.
  A model of K anchor ranges (``data.anchors``) keeps one classifier per pair: each labels its pair's
  segment of the series (the trial's window and anchors, which must fit the new series), giving one
  boundary per transition. With one pair and no window the whole series is classified.
- TeaNet studies: files in a ``data.format`` (default: the one the model was trained on), resampled onto
  the model's wavenumbers (kept in its model.yaml) and scaled as in training; or ``--format rows``, a
  ``.npy``/``.csv`` of spectra already on the model's axis. The table has each spectrum's class (by
  name) and its probability and, for labelled files, the file's label and whether they agree.

Reads the MLflow store the search wrote (``--tracking-uri``, default runs/mlflow.db).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from platform.best_model import SavedModel, load_saved_model, pair_parts
from platform.options import UsageError
from platform.stores import open_existing_store
from spectra.confidence import Confidence
from spectra.formats import FORMATS

SPECTRA_FORMATS = ("rows", *FORMATS)
Prediction = tuple[pd.DataFrame, list[str]]  # the table, then summary lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m platform.predict", description=__doc__.split("\n")[0])
    parser.add_argument("run_id", help="MLflow run id of a trial that keeps a model (a search's best)")
    parser.add_argument("--data", type=Path, required=True,
                        help="HED: a folder or .7z of .xy/.xye files; TeaNet: spectra in --format")
    parser.add_argument("--format", choices=SPECTRA_FORMATS, dest="data_format",
                        help="TeaNet: 'rows' (a .npy or .csv of spectra on the model's axis, one per row) or "
                             "a data.format (files as the search read them, resampled onto the model's "
                             "wavenumbers; their labels are compared with the predictions). Default: the "
                             "model's data.format, or rows for a model of generated spectra")
    parser.add_argument("--tracking-uri", help="the MLflow store the search used (default runs/mlflow.db)")
    parser.add_argument("--output", type=Path, help="also write the table as CSV here")
    return parser


def predict(model: SavedModel, data: Path, data_format: str | None = None) -> Prediction:
    """(per-spectrum table, summary lines) of a saved model on new spectra; UsageError on bad input."""
    task = model.description["task"]
    if task == "hed":
        return _predict_series(model, data)
    if task == "teanet":
        return _predict_spectra(model, data, data_format)
    raise UsageError(f"run {model.description['run_id']}: no prediction rule for task {task!r}")


def _check_length(model: SavedModel, length: int, data: Path) -> None:
    expected = model.description["length"]
    if length != expected:
        raise UsageError(f"--data {data}: spectra of {length} points, but the model was trained on "
                         f"{expected} points")


def _predict_series(model: SavedModel, path: Path) -> Prediction:
    """A HED series, prepared as the trial prepared its own (2θ range, baseline, window, anchor pairs):
    each pair's labels over its segment, then its boundary and confidence (MODELS.md B6)."""
    from spectra.confidence import classification_confidence
    from spectra.errors import DataError
    from spectra.xy import load_series
    from trials.config import ConfigError
    from trials.hed import corrected, series_for
    from trials.hed_config import series_segments

    config = {**model.config, "data.path": str(path)}
    header = config["data.header_lines"]
    pairs = [model.weights[name] for name in pair_parts(model.weights)]
    try:
        loaded = load_series(path, header_lines=None if header < 0 else header)
        series = series_for(config, loaded)  # cropped to the trial's 2θ range
        _check_length(model, len(series.two_theta), path)
        spectra = corrected(series, config)
        if len(pairs) == 1 and not config["data.window"]:
            spans = [(0, len(spectra))]  # the paper's case: the whole new series, wherever its anchors were
        else:
            spans = [(segment.start, segment.stop) for segment in series_segments(config, len(spectra))]
    except (DataError, ConfigError) as error:
        raise UsageError(f"--data {path}: {error}") from None
    table = pd.DataFrame({"spectrum": range(len(spectra)), "file": loaded.names})
    summary = []
    for k, (weights, (start, stop)) in enumerate(zip(pairs, spans, strict=True), start=1):
        probability, labels = _classify(config, weights, series.two_theta, spectra[start:stop])
        suffix = "" if len(pairs) == 1 else f"_{k}"
        table[f"probability_class1{suffix}"] = pd.Series(probability.round(4), index=range(start, stop))
        table[f"label{suffix}"] = pd.Series(labels, index=range(start, stop), dtype="Int64")
        prefix = "" if len(pairs) == 1 else f"transition {k} (spectra {start}..{stop - 1}): "
        summary += _transition_lines(classification_confidence(labels), start, prefix)
    return table, summary


def _classify(config: dict[str, Any], weights: dict[str, torch.Tensor], two_theta: np.ndarray,
              spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probability of class 1, label) of each spectrum, as the trial evaluated its segment."""
    from models.binned import bin_rows, majority_vote
    from models.registry import create_model
    from trials.hed_config import model_config

    network = create_model(config["model.name"], num_classes=1, length=len(two_theta), **model_config(config))
    network.load_state_dict(weights)
    x = spectra
    if config["model.name"] == "binned_fcnn":
        x = bin_rows(two_theta, spectra, config["model.binned_fcnn.bins"])
    network.train(config["eval.batchnorm"] == "train")  # the paper's test-time BatchNorm, as trained
    with torch.no_grad():
        probability = network(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                              test=True).view(-1).numpy()
    if config["model.name"] == "binned_fcnn":  # a spectrum's label is the vote of its rows
        labels = majority_vote(probability, len(spectra))
        return (probability.reshape(len(spectra), -1) > 0.5).mean(axis=1), labels  # share of rows voting 1
    return probability, (probability > 0.5).astype(int)


def _transition_lines(result: Confidence, start: int, prefix: str) -> list[str]:
    """Boundary (whole-series indices) and confidence of one segment's labels."""
    if not result.found:
        return [f"{prefix}boundary: none found", f"{prefix}confidence: {result.confidence:.4f}"]
    return [f"{prefix}boundary: class 0 up to spectrum {start + result.boundary_lower}, class 1 from "
            f"spectrum {start + result.boundary_upper}",
            f"{prefix}confidence: {result.confidence:.4f} ({result.ambiguous} spectra between the two runs)"]


def _read_matrix(path: Path) -> np.ndarray:
    try:
        matrix = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as error:
        said = " ".join(str(error).split())[:200]
        raise UsageError(f"--data {path}: cannot read spectra ({said})") from None
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        raise UsageError(f"--data {path}: expected a finite 2-D array (one spectrum per row), got shape "
                         f"{matrix.shape}")
    return matrix.astype(np.float32)


def _predict_spectra(model: SavedModel, path: Path, data_format: str | None) -> Prediction:
    """TeaNet: the classifier's class and probability per spectrum (and, for labelled files, whether
    it is the file's label)."""
    from models.registry import create_model
    from trials.teanet_config import classifier_options

    config = model.config
    trained_on = config["data.format"]
    data_format = data_format or ("rows" if trained_on == "lorentz" else trained_on)
    if data_format == "rows":
        spectra, given, origins = _rows(model, path), None, None
    else:
        spectra, given, origins = _labelled_files(model, path, data_format)
    network = create_model(config["model.classifier"], **classifier_options(config))
    network.load_state_dict(model.weights["classifier"])
    network.eval()
    with torch.no_grad():
        output = network(torch.from_numpy(spectra))
    probabilities = output if network.output == "softmax" else torch.softmax(output, dim=1)
    confidence, label = probabilities.max(dim=1)
    names = model.description.get("class_names") or [str(k) for k in range(config["data.classes"])]
    table = pd.DataFrame({"spectrum": range(len(spectra)), "class": [names[k] for k in label.numpy()],
                          "probability": confidence.numpy().round(4)})
    summary = [f"{len(spectra)} spectra classified into {len(names)} classes"]
    if given is not None:
        table.insert(1, "file", origins)
        table["given"] = given
        table["correct"] = table["class"] == table["given"]
        summary.append(_agreement(table, set(names)))
    return table, summary


def _rows(model: SavedModel, path: Path) -> np.ndarray:
    """Rows of a .npy/.csv, already on the model's axis, scaled as the training data were."""
    from spectra.lorentz import min_max_scale

    if path.suffix not in (".npy", ".csv") or not path.is_file():
        raise UsageError(f"--data {path}: expected a .npy or .csv file of spectra, one per row")
    spectra = _read_matrix(path)
    _check_length(model, spectra.shape[1], path)
    scaled = model.config["data.format"] == "lorentz" or model.config["data.scale"] == "minmax"
    return min_max_scale(spectra) if scaled else spectra


def _labelled_files(model: SavedModel, path: Path, data_format: str) -> tuple[np.ndarray, list[str], list]:
    """A user's labelled files in a data.format, put on the model's wavenumbers as training put its own."""
    from spectra.errors import DataError
    from spectra.formats import read_raw
    from spectra.labelled import on_grid

    grid = model.description.get("wavenumbers")
    if grid is None:
        raise UsageError(f"--format {data_format}: this model was trained on generated spectra, which have "
                         "no wavenumber axis; give its spectra as --format rows")
    config = model.config
    try:
        raw = read_raw(data_format, path, config["data.label_column"], config["data.class_key"])
        spectra, given = on_grid(raw, np.asarray(grid), config["data.scale"])
    except DataError as error:
        raise UsageError(f"--data {path}: {error}") from None
    return spectra, given, list(raw.origins)


def _agreement(table: pd.DataFrame, known: set[str]) -> str:
    """How many predictions match the files' labels, among the spectra of classes the model knows."""
    seen = table["given"].isin(known)
    line = f"agree with the files' labels: {int(table['correct'].sum())} of {int(seen.sum())}"
    if seen.sum():
        line += f" ({table['correct'][seen].mean():.1%})"
    unknown = sorted(set(table["given"][~seen]))
    if unknown:
        line += (f"; {int((~seen).sum())} spectra of classes the model never saw: {', '.join(unknown[:5])}"
                 + (" …" if len(unknown) > 5 else ""))
    return line


def _provenance(model: SavedModel) -> str:
    d = model.description
    line = (f"Model of run {d['run_id']} ({d['trial']} of {d.get('search_id')}, study {d['study']}), "
            f"weights after epoch {d['weights_epoch']}")
    if d.get("selected_epoch") and d["selected_epoch"] != d["weights_epoch"]:
        line += (f" (its reported metrics are of the classifier kept at epoch {d['selected_epoch']}, by "
                 "validation loss)")
    return line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        client = open_existing_store(args.tracking_uri)
        model = load_saved_model(client, args.run_id)
        table, summary = predict(model, args.data, args.data_format)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(_provenance(model))
    print(table.to_string(index=False))
    for line in summary:
        print(line)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.output, index=False)
        print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
