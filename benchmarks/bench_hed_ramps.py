"""What the real-ramp additions of issue 11 cost on the driver, at the paper's size and at the issue's
(384 × 2500): reading the published .7z against the folder it holds, the neither-class check, the series
picture, and the two-anchor whole-series run against the window and the three-range runs (their
confidence, boundaries and neither count, on a simulated ramp with two transitions and a third regime);
and the neither-class distance of each regime at full resolution and summed into 64 bins.

    python benchmarks/bench_hed_ramps.py [--model fcnn_1d] [--epochs 20]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from spectra.baseline import remove_baseline  # noqa: E402
from spectra.neither import neither_in_segments  # noqa: E402
from spectra.ramp import RampSettings, simulate_ramp  # noqa: E402
from spectra.selection import parse_anchors, parse_window, segments  # noqa: E402


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def reading(spectra: int, points: int) -> None:
    import py7zr

    from spectra.xy import load_series

    ramp = simulate_ramp(RampSettings(spectra=spectra, points=points, transition=spectra // 2))
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory) / "ramp"
        folder.mkdir()
        header = [f"# header line {i}" for i in range(25)]
        for run, row in enumerate(ramp.intensity, start=1):
            lines = [f"{t:.6f} {y:.6f}" for t, y in zip(ramp.two_theta, row, strict=True)]
            (folder / f"l2_ramp_00001_m1_{run:04d}.xy").write_text("\n".join(header + lines) + "\n")
        archive = Path(directory) / "ramp.7z"
        with py7zr.SevenZipFile(archive, "w") as packed:
            packed.writeall(folder, "ramp")
        size = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        a, folder_s = _timed(load_series, folder)
        b, archive_s = _timed(load_series, archive)
        same = np.array_equal(a.intensity, b.intensity)
        print(f"read {spectra} × {points}: folder {folder_s:.2f} s ({size:.0f} MB of .xy), "
              f".7z {archive_s:.2f} s ({archive.stat().st_size / 2**20:.1f} MB), identical: {same}")


def neither_and_picture(spectra: int, points: int, transitions: tuple[int, int], anchors: str) -> None:
    from spectra.series_figure import SeriesPicture, series_figure

    ramp = simulate_ramp(RampSettings(spectra=spectra, points=points, transition=transitions[0],
                                      second_transition=transitions[1]))
    corrected = remove_baseline(ramp.intensity)
    parts = segments(parse_anchors(anchors), parse_window("", spectra))
    flagged, seconds = _timed(neither_in_segments, corrected, parts)
    labels = [np.zeros(part.stop - part.start, dtype=int) for part in parts]
    picture = SeriesPicture(ramp.two_theta, corrected, parts, labels, flagged)

    def draw():
        import io
        buffer = io.BytesIO()
        series_figure(picture).savefig(buffer, format="png", dpi=110)
        return buffer

    png, draw_s = _timed(draw)
    print(f"neither class {spectra} × {points}, anchors {anchors}: {seconds:.2f} s, {len(flagged)} flagged "
          f"(third regime from {transitions[1]}: {int((flagged >= transitions[1]).sum())} of "
          f"{spectra - transitions[1]}); picture {draw_s:.2f} s, {len(png.getvalue()) / 1024:.0f} kB")


def separation(spectra: int, points: int, transitions: tuple[int, int], anchors: str) -> None:
    """The neither-class distance per regime, in units of the anchors' largest leave-one-out distance
    (the threshold is eval.neither_factor = 1.5 of it), at full resolution and summed into 64 bins."""
    from spectra.neither import bin_points, leave_one_out, mixture_distance

    ramp = simulate_ramp(RampSettings(spectra=spectra, points=points, transition=transitions[0],
                                      second_transition=transitions[1]))
    corrected = remove_baseline(ramp.intensity)
    indices = np.concatenate([np.asarray(r) for r in parse_anchors(anchors)])
    t1, t2 = transitions
    regimes = {"A": (0, t1 - 8), "A→B": (t1 - 8, t1 + 8), "B": (t1 + 8, t2 - 8), "B→C": (t2 - 8, t2 + 8),
               "C": (t2 + 8, spectra)}
    for bins in (points, 64):
        x = bin_points(corrected, bins)
        scale = leave_one_out(x[indices]).max()
        distance = mixture_distance(x, x[indices]) / scale
        shown = ", ".join(f"{name} {distance[a:b].min():.2f}–{distance[a:b].max():.2f}"
                          for name, (a, b) in regimes.items())
        print(f"distance / anchors' leave-one-out, {spectra} × {points}, {bins} bins, anchors {anchors}:\n"
              f"  {shown}")


def modes(model: str, epochs: int) -> None:
    from search_spaces import load_study
    from trials.hed import run_trial

    study = load_study("hed_architectures")
    base = {"data.spectra": 384, "data.points": 2500, "data.sim_transition": 76, "data.sim_transition2": 163,
            "data.pool_step": 5, "model.name": model, "train.epochs": epochs, "data.copies": 10}
    two = {"data.class0": "0:55:5", "data.class1": "95:125:5"}  # the anchors
    runs = {
        "whole series, 2 ranges": two,
        "window 0:130, 2 ranges": {**two, "data.window": "0:130"},
        "3 ranges": {"data.anchors": "0:55:5,95:125:5,200:381:10"},
    }
    for name, change in runs.items():
        metrics, seconds = _timed(run_trial, study.config_for("quick", {**base, **change}))
        shown = {k: round(v, 3) for k, v in metrics.items()
                 if k.startswith(("confidence", "boundary")) or k == "neither_class"}
        print(f"{model} {name}: {seconds:.1f} s {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="fcnn_1d")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    reading(349, 4023)
    separation(349, 4023, (120, 250), "0:101:10,140:231:10")
    separation(384, 2500, (76, 163), "0:55:5,95:125:5")
    neither_and_picture(349, 4023, (185, 280), "0:151:10,200:261:10")
    neither_and_picture(384, 2500, (76, 163), "0:55:5,95:125:5")
    neither_and_picture(384, 2500, (76, 163), "0:55:5,95:125:5,200:381:10")
    modes(args.model, args.epochs)


if __name__ == "__main__":
    main()
