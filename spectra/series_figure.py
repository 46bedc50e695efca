"""A picture of a HED series (issue 11): the spectra as an image over 2θ and time, with the anchors,
the predicted labels, the boundaries and the spectra of neither class marked, so a user sees at a
glance whether the boundaries sit where the patterns change.

Drawn with matplotlib's object API (no pyplot state) on the Agg canvas; returns a ``Figure``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from spectra.confidence import classification_confidence
from spectra.selection import Segment

_CLASS_COLOURS = ListedColormap(["#3b6fb6", "#e08a1e"])  # class 0, class 1
_ANCHOR_COLOUR = "#1a9850"


@dataclass(frozen=True)
class SeriesPicture:
    """What the picture shows; every index is the whole series'."""

    two_theta: np.ndarray  # [L]
    spectra: np.ndarray  # [N, L], as the models saw them (cropped, baseline removed)
    segments: Sequence[Segment]
    labels: Sequence[np.ndarray]  # per segment, its predicted 0/1 labels
    neither: np.ndarray  # indices of the spectra of neither class
    title: str = ""


def series_figure(picture: SeriesPicture) -> Figure:
    """The image of the window's spectra, one label strip per transition and a neither-class strip."""
    segments = list(picture.segments)
    start, stop = segments[0].start, segments[-1].stop
    strips = len(segments) + 1
    figure = Figure(figsize=(9, 6.5), layout="constrained")
    grid = figure.add_gridspec(1, 1 + strips, width_ratios=[12] + [0.7] * strips)
    image = figure.add_subplot(grid[0, 0])
    _draw_spectra(image, picture, start, stop)
    for k, (segment, labels) in enumerate(zip(segments, picture.labels, strict=True)):
        strip = figure.add_subplot(grid[0, 1 + k], sharey=image)
        _draw_labels(strip, segment, np.asarray(labels), k + 1, len(segments))
    _mark_anchors(image, [segments[0].class0, *(segment.class1 for segment in segments)])
    neither = figure.add_subplot(grid[0, strips], sharey=image)
    _draw_neither(neither, picture.neither, start, stop)
    image.set_ylim(stop - 0.5, start - 0.5)  # time runs down the page
    image.legend(handles=_legend(), loc="lower right", fontsize=7, framealpha=0.85)
    figure.suptitle(picture.title, fontsize=10)
    return figure


def _draw_spectra(axes, picture: SeriesPicture, start: int, stop: int) -> None:
    shown = picture.spectra[start:stop]
    # sqrt keeps weak reflections (a new phase at a few %) visible beside the strongest peak
    scaled = np.sqrt(np.clip(shown, 0, None))
    low, high = (float(v) for v in np.percentile(scaled, [50, 99.5]))  # the median is the noise floor
    t = picture.two_theta
    axes.imshow(scaled, aspect="auto", cmap="gray_r", vmin=low, vmax=max(high, low + 1e-12),
                interpolation="nearest", extent=(t[0], t[-1], stop - 0.5, start - 0.5))
    axes.set_xlabel("2θ (degrees)")
    axes.set_ylabel("spectrum (index in the whole series)")


def _mark_anchors(axes, ranges: list[range]) -> None:
    """Each anchor as a tick at the left edge, each range named A1, A2, ... (range k is class 1 of
    pair k − 1 and class 0 of pair k)."""
    for k, anchors in enumerate(ranges, start=1):
        for index in anchors:
            axes.axhline(index, xmin=0, xmax=0.025, color=_ANCHOR_COLOUR, linewidth=2)
        axes.annotate(f"A{k}", (0.03, anchors[0]), xycoords=("axes fraction", "data"), color=_ANCHOR_COLOUR,
                      fontsize=8, va="top", fontweight="bold")


def _draw_labels(axes, segment: Segment, labels: np.ndarray, k: int, pairs: int) -> None:
    axes.imshow(labels[:, None], aspect="auto", cmap=_CLASS_COLOURS, vmin=0, vmax=1, interpolation="nearest",
                extent=(0, 1, segment.stop - 0.5, segment.start - 0.5))
    result = classification_confidence(labels)
    if result.found:
        # between the last spectrum of the class-0 run and the next; before the first of the class-1 run
        lower, upper = segment.start + result.boundary_lower, segment.start + result.boundary_upper
        for edge in (lower + 0.5, upper - 0.5):
            axes.axhline(edge, color="crimson", linewidth=1.2)
    axes.set_xticks([])
    axes.tick_params(labelleft=False)
    name = "labels" if pairs == 1 else f"pair {k}"
    axes.set_title(f"{name}\n{result.confidence:.2f}", fontsize=7)


def _draw_neither(axes, neither: np.ndarray, start: int, stop: int) -> None:
    flags = np.zeros(stop - start)
    inside = neither[(neither >= start) & (neither < stop)] - start
    flags[inside] = 1
    axes.imshow(flags[:, None], aspect="auto", cmap=ListedColormap(["white", "crimson"]), vmin=0, vmax=1,
                interpolation="nearest", extent=(0, 1, stop - 0.5, start - 0.5))
    axes.set_xticks([])
    axes.tick_params(labelleft=False)
    axes.set_title(f"neither\n{len(inside)}", fontsize=7)


def _legend() -> list:
    return [Line2D([], [], color=_ANCHOR_COLOUR, linewidth=2, label="anchors (range A1, A2, ...)"),
            Patch(color=_CLASS_COLOURS(0), label="predicted class 0"),
            Patch(color=_CLASS_COLOURS(1), label="predicted class 1"),
            Line2D([], [], color="crimson", label="boundaries (lower, upper)"),
            Patch(color="crimson", label="neither class")]
