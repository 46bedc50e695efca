"""The HED studies' end-of-search outputs (Study.after_search; issue 11): what part of the series the
best trial analysed and what it found there, printed under the summary and logged to the parent run
with a picture of the series (``series.png``).

The best trial's predicted labels come from the trial itself (its ``labels.json`` artifact, sent with
its last report; workers never open the store). A trial the scheduler stopped sent none: its labels are
then read from its final trial state (the run's ``checkpoint`` tag), where that path is on this machine.
The spectra are the data the driver read, or the simulated ramp made again from the config.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces._study import SearchEnd

PICTURE, SUMMARY = "series.png", "series_summary.txt"


def after_search(end: SearchEnd) -> None:
    """Print and log the best trial's window, transitions and neither-class count, and its picture."""
    if end.best is None:
        return
    from spectra.series_figure import SeriesPicture, series_figure
    from trials.hed import neither_spectra, prepared

    config = best_config(end.best)
    series, spectra, parts = prepared(config, end.data)
    labels = trial_labels(end.client, end.best, len(parts))
    neither = neither_spectra(config, spectra, parts)
    text = summary_text(end.best, config, len(series.intensity), series.two_theta, neither)
    print(f"\n{text}")
    end.client.log_text(end.parent_run_id, text + "\n", SUMMARY)
    if labels is None:
        print(f"(no {PICTURE}: the best trial's labels are in neither its artifacts nor a local checkpoint)")
        return
    title = f"{config['model.name']}, best trial {end.best.get('trial', '')}"
    figure = series_figure(SeriesPicture(series.two_theta, spectra, parts, labels, neither, title))
    end.client.log_figure(end.parent_run_id, figure, PICTURE, save_kwargs={"dpi": 110})
    print(f"The series with its anchors, labels and boundaries: artifact {PICTURE} of the parent run.")


def best_config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The best trial's config, typed (MLflow keeps params as text)."""
    from trials.config import complete_config
    from trials.hed_config import FIELDS

    params = {key.removeprefix("param:"): value for key, value in row.items() if key.startswith("param:")}
    typed = {key: FIELDS[key].parse(key, value) for key, value in params.items() if key in FIELDS}
    return complete_config(FIELDS, typed)


def trial_labels(client: Any, row: Mapping[str, Any], pairs: int) -> list[np.ndarray] | None:
    """Each pair's predicted labels of the trial's last evaluation: its labels.json, else its final
    state (a local checkpoint), else None."""
    with tempfile.TemporaryDirectory(prefix="hed-labels-") as directory:
        try:
            path = client.download_artifacts(row["run_id"], "labels.json", directory)
            document = json.loads(Path(path).read_text())
            return [np.asarray(pair["labels"], dtype=int) for pair in document["pairs"]]
        except Exception:  # noqa: BLE001  (no such artifact: a stopped trial; fall back to its state)
            pass
    checkpoint = client.get_run(row["run_id"]).data.tags.get("checkpoint", "")
    if not checkpoint or not Path(checkpoint).is_dir():
        return None
    from trials.trainable import load_state

    state = load_state(checkpoint)
    found = [state["labels"], *(pair["labels"] for pair in state.get("more_pairs", []))]
    return [np.asarray(labels.numpy(), dtype=int) for labels in found][:pairs]


def summary_text(row: Mapping[str, Any], config: Mapping[str, Any], spectra: int, two_theta: np.ndarray,
                 neither: np.ndarray) -> str:
    """What part of the series the best trial analysed, its transitions and the neither-class count."""
    window = config["data.window"] or f"0:{spectra}"
    crop = f"{two_theta[0]:.4g}–{two_theta[-1]:.4g}°" + ("" if config["data.two_theta"] else " (all)")
    anchors = config["data.anchors"] or f"{config['data.class0']},{config['data.class1']}"
    lines = [f"Best trial {row.get('trial', '')} ({config['model.name']}): window {window} of {spectra} "
             f"spectra, 2θ {crop}, anchors {anchors}"]
    for k in range(1, anchors.count(",") + 1):
        suffix = "" if anchors.count(",") == 1 else f"_{k}"
        lower, upper = row.get(f"boundary{suffix}_lower"), row.get(f"boundary{suffix}_upper")
        confidence = row.get(f"confidence{suffix}")
        if lower is None or upper is None or confidence is None:
            continue
        found = f"boundary {int(lower)}–{int(upper)}" if confidence > 0 else "no boundary found"
        error = row.get(f"boundary{suffix}_error")
        known = "" if error is None or error != error else f" (boundary_error {int(error)})"
        lines.append(f"  transition {k}: {found}, confidence {confidence:.2f}{known}")
    if len(neither):
        shown = ", ".join(str(i) for i in neither[:8]) + (" …" if len(neither) > 8 else "")
        lines.append(f"  {len(neither)} spectra of the window look like neither class ({shown}): their "
                     "labels are forced 0 or 1 and count in the confidence. Narrow data.window, or add "
                     "anchor ranges (data.anchors) nearer to them, before trusting it.")
    else:
        lines.append("  every spectrum of the window looks like one of its pair's classes")
    return "\n".join(lines)
