"""The HED studies end to end at the smoke budget through a real Ray cluster, Optuna and MLflow, on the
simulated ramp and on a user's folder of .xy files read by the driver (DESIGN.md "Data on a cluster")."""

from __future__ import annotations

import math

import pytest

from tests.e2e_support import SMOKE, client_for, search

pytestmark = pytest.mark.slow


def _runs(workdir, experiment: str):
    client = client_for(workdir)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    parent = next(r for r in runs if r.data.tags.get("search_role") == "parent")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return parent, children


def test_hed_architectures_search_records_confidence_and_boundaries(workdir, ray_address):
    result = search([*SMOKE, "hed_architectures", "--trials", "3"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    parent, children = _runs(workdir, "hed_architectures")
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        metrics = child.data.metrics
        for name in ("confidence", "boundary_lower", "boundary_upper", "train_time_s",
                     "peak_memory_mb", "trainable_params", "epochs", "confidence_score"):
            assert name in metrics, name
        assert 0.0 <= metrics["confidence"] <= 1.0
        # The run's latest boundary_error is a number only where the last evaluation found a boundary
        # (absent if none ever did, NaN if an earlier epoch's boundary was lost).
        error = metrics.get("boundary_error", math.nan)
        assert (not math.isnan(error)) == (metrics["confidence"] > 0), "only where a boundary exists"
        assert child.data.params["eval.batchnorm"] == "eval", "tuning uses the fair setting"
    assert parent.data.tags["dataset"] == "simulated_ramp"


@pytest.mark.long
def test_hed_bins_reproduce_prints_the_sweep_beside_the_paper(workdir, ray_address):
    result = search([*SMOKE, "hed_bins", "--reproduce"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Beside the paper" in result.stdout and "B=16" in result.stdout
    _, children = _runs(workdir, "hed_bins")
    assert sorted(int(c.data.params["model.binned_fcnn.bins"]) for c in children) == list(range(1, 17))
    for child in children:
        bins = int(child.data.params["model.binned_fcnn.bins"])
        assert child.data.metrics["trainable_params"] == 1058 * bins + 1
        assert child.data.params["eval.batchnorm"] == "train", "--reproduce uses the paper's quirks"


# A user's folder of .xy files read by the driver, searched and resumed: tests/test_record_e2e.py.


@pytest.mark.long
def test_hed_architectures_with_three_anchor_ranges_records_each_transition_and_the_picture(workdir,
                                                                                            ray_address):
    # The smoke ramp with a second transition into a third regime, and an anchor range in each regime.
    ramp = ["--set", "data.sim_transition2=62", "--set", "data.anchors=0:31:5,45:56:5,70:80:5",
            "--set", "model.name=fcnn_1d", "--set", "data.window=0:80"]
    result = search([*SMOKE, "hed_architectures", "--trials", "2", "--scheduler", "fifo", *ramp], workdir,
                    ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    client = client_for(workdir)
    parent, children = _runs(workdir, "hed_architectures")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    for child in children:
        metrics = child.data.metrics
        for name in ("confidence", "confidence_mean", "confidence_1", "confidence_2", "boundary_1_lower",
                     "boundary_1_upper", "boundary_2_lower", "boundary_2_upper", "neither_class"):
            assert name in metrics, name
        assert metrics["confidence"] == min(metrics["confidence_1"], metrics["confidence_2"])
        assert 45 <= metrics["boundary_2_lower"] <= metrics["boundary_2_upper"] <= 79, "whole-series indices"
        assert child.data.params["data.anchors"] == "0:31:5,45:56:5,70:80:5"
        assert child.data.params["data.window"] == "0:80"
        assert "labels.json" in [a.path for a in client.list_artifacts(child.info.run_id)]
    on_parent = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "series.png" in on_parent and "series_summary.txt" in on_parent
    assert "transition 2:" in result.stdout and "window 0:80 of 80 spectra" in result.stdout
