"""The HED studies' end-of-search outputs (search_spaces/_hed_end.py): the best trial's window,
transitions and neither-class count under the summary, and series.png on the parent run, drawn from the
labels the trial sent (labels.json) and the series (the driver's data, or the simulator made again)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search_spaces import load_study
from search_spaces._hed_end import PICTURE, SUMMARY, after_search
from search_spaces._study import SearchEnd
from spectra.ramp import RampSettings, simulate_ramp
from spectra.xy import Series

RAMP = {"data.spectra": 150, "data.points": 1024, "data.sim_transition": 50, "data.sim_transition2": 100,
        "data.pool_step": 5, "data.anchors": "0:36:5,65:86:5,115:150:5", "model.name": "fcnn_1d"}


@pytest.fixture
def client(mlflow_client, tmp_path):
    """A client on a fresh store, with ``client.experiment_id`` an experiment that keeps its artifacts
    under tmp_path (the default experiment's go to ./mlruns of the working directory)."""
    client, _ = mlflow_client
    client.experiment_id = client.create_experiment("hed", artifact_location=(tmp_path / "store").as_uri())
    return client


def _best_run(client, config, labels: dict | None, metrics: dict) -> dict:
    """A finished child run with the trial's params (and labels.json), as a summary row."""
    from mlflow.entities import Param

    run_id = client.create_run(client.experiment_id).info.run_id
    params = [Param(key, str(value)) for key, value in config.items()]
    for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=params[start:start + 100])
    if labels is not None:
        client.log_text(run_id, json.dumps(labels), "labels.json")
    return {"trial": "trial-0007", "run_id": run_id, "status": "FINISHED", **metrics,
            **{f"param:{k}": str(v) for k, v in config.items()}}


def _step_labels(start: int, stop: int, transition: int) -> list[int]:
    return [int(i >= transition) for i in range(start, stop)]


def _neither_count(text: str) -> int:
    """The count the summary gives (0 when it says every spectrum belongs)."""
    match = re.search(r"(\d+) spectra of the window look like neither class", text)
    if match is None:
        assert "every spectrum of the window looks like one of its pair's classes" in text
        return 0
    return int(match.group(1))


def _artifacts(client, run_id: str, tmp_path: Path) -> dict[str, bytes]:
    names = [f.path for f in client.list_artifacts(run_id)]
    return {name: Path(client.download_artifacts(run_id, name, str(tmp_path))).read_bytes() for name in names}


def test_the_best_trials_series_picture_and_transitions_go_to_the_parent_run(client, tmp_path, capsys):
    config = load_study("hed_architectures").config_for("smoke", RAMP)
    labels = {"pairs": [{"labels": _step_labels(0, 86, 51)}, {"labels": _step_labels(65, 150, 99)}]}
    metrics = {"confidence": 1.0, "confidence_1": 1.0, "confidence_2": 1.0, "boundary_1_lower": 50,
               "boundary_1_upper": 51, "boundary_2_lower": 98, "boundary_2_upper": 99}
    row = _best_run(client, config, labels, metrics)
    parent = client.create_run(client.experiment_id).info.run_id
    after_search(SearchEnd(client, parent, [row], row, None, "search"))

    saved = _artifacts(client, parent, tmp_path)
    assert saved[PICTURE].startswith(b"\x89PNG")
    text = saved[SUMMARY].decode()
    assert "window 0:150 of 150 spectra" in text and "anchors 0:36:5,65:86:5,115:150:5" in text
    assert "transition 1: boundary 50–51, confidence 1.00" in text
    assert "transition 2: boundary 98–99, confidence 1.00" in text
    assert _neither_count(text) <= 3, text  # the third regime has anchors of its own
    assert text.strip() in capsys.readouterr().out


def test_two_anchor_ranges_over_a_third_regime_say_how_many_spectra_are_neither(client, tmp_path):
    two = {**RAMP, "data.anchors": "", "data.class0": "0:36:5", "data.class1": "65:86:5"}
    config = load_study("hed_architectures").config_for("smoke", two)
    row = _best_run(client, config, {"pairs": [{"labels": _step_labels(0, 150, 51)}]},
                    {"confidence": 0.99, "boundary_lower": 50, "boundary_upper": 51})
    parent = client.create_run(client.experiment_id).info.run_id
    after_search(SearchEnd(client, parent, [row], row, None, "search"))
    text = _artifacts(client, parent, tmp_path)[SUMMARY].decode()
    assert _neither_count(text) >= 45 and "Narrow data.window" in text


def test_a_users_series_is_drawn_from_the_drivers_data_in_its_window(client, tmp_path):
    ramp = simulate_ramp(RampSettings(spectra=150, points=1024, transition=50, second_transition=100))
    data = Series(ramp.two_theta, ramp.intensity, [f"s_{i:04d}.xy" for i in range(150)])
    user = {"data.path": "/on/the/driver", "data.pool_step": 5, "data.class0": "20:36:5",
            "data.class1": "65:86:5", "data.window": "20:95", "data.two_theta": "11:20", "model.name": "cnn"}
    config = load_study("hed_architectures").config_for("smoke", user)
    row = _best_run(client, config, {"pairs": [{"labels": _step_labels(20, 95, 50)}]},
                    {"confidence": 1.0, "boundary_lower": 49, "boundary_upper": 50})
    parent = client.create_run(client.experiment_id).info.run_id
    after_search(SearchEnd(client, parent, [row], row, data, "search"))
    saved = _artifacts(client, parent, tmp_path)
    assert saved[PICTURE].startswith(b"\x89PNG")
    assert "window 20:95 of 150 spectra, 2θ 11.01–19.99°" in saved[SUMMARY].decode()


def test_without_the_trials_labels_the_summary_still_comes_and_no_picture_is_made(client, tmp_path,
                                                                                   capsys):
    config = load_study("hed_architectures").config_for("smoke", RAMP)
    row = _best_run(client, config, None, {"confidence": 0.5})
    parent = client.create_run(client.experiment_id).info.run_id
    after_search(SearchEnd(client, parent, [row], row, None, "search"))
    assert set(_artifacts(client, parent, tmp_path)) == {SUMMARY}
    assert f"no {PICTURE}" in capsys.readouterr().out


def test_a_stopped_trials_labels_come_from_its_final_state(client, tmp_path):
    import torch

    from search_spaces._hed_end import trial_labels
    from trials.trainable import save_state

    run_id = client.create_run(client.experiment_id).info.run_id
    first, second = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1])
    save_state({"labels": first, "more_pairs": [{"labels": second}]}, tmp_path)
    client.set_tag(run_id, "checkpoint", str(tmp_path))
    labels = trial_labels(client, {"run_id": run_id}, 2)
    assert [list(x) for x in labels] == [[0, 0, 1, 1], [0, 1, 1]]
    client.set_tag(run_id, "checkpoint", "s3://bucket/elsewhere")
    assert trial_labels(client, {"run_id": run_id}, 2) is None
