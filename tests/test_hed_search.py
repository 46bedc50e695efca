"""The HED studies end to end at the smoke budget through a real Ray cluster, Optuna and MLflow, on the
simulated ramp and on a user's folder of .xy files read by the driver (DESIGN.md "Data on a cluster")."""

from __future__ import annotations

import numpy as np
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
        for name in ("confidence", "boundary_lower", "boundary_upper", "boundary_error", "train_time_s",
                     "peak_memory_mb", "trainable_params", "epochs", "confidence_score"):
            assert name in metrics, name
        assert 0.0 <= metrics["confidence"] <= 1.0
        assert child.data.params["eval.batchnorm"] == "eval", "tuning uses the fair setting"
    assert parent.data.tags["dataset"] == "simulated_ramp"


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


def _write_series(folder, spectra: np.ndarray, two_theta: np.ndarray) -> None:
    folder.mkdir()
    for run, intensity in enumerate(spectra, start=1):
        lines = [f"# header line {i}" for i in range(25)]
        lines += [f"{t:.6f} {y:.6f}" for t, y in zip(two_theta, intensity, strict=True)]
        name = f"l2_ramp_00001_m1_{run:04d}.xy"  # the Zenodo naming: the last number is the run (B1)
        (folder / name).write_text("\n".join(lines) + "\n")


def test_a_users_series_is_read_by_the_driver_and_reaches_the_trials(workdir, ray_address):
    from spectra.ramp import RampSettings, simulate_ramp

    ramp = simulate_ramp(RampSettings(spectra=80, points=512, transition=42, seed=3))
    _write_series(workdir / "series", ramp.intensity, ramp.two_theta)
    result = search([*SMOKE, "hed_architectures", "--trials", "2", "--set", f"data.path={workdir / 'series'}",
                     "--set", "data.transition=42", "--set", "model.name=cnn"], workdir, ray_address)
    assert result.returncode == 0, result.stdout + result.stderr
    parent, children = _runs(workdir, "hed_architectures")
    assert parent.data.tags["dataset"].startswith("files:")
    assert len(children) == 2 and all(c.info.status == "FINISHED" for c in children)
    assert all("boundary_error" in c.data.metrics for c in children)
