"""Shared fixtures: a pre-migrated empty MLflow store (migrating a fresh SQLite store costs ~5 s, so
tests copy one made once per session) and, for end-to-end tests, one real Ray cluster per session."""

from __future__ import annotations

import os
import secrets
import shutil

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Searches draw the report's plots only in the tests that check them (platform/runner.py, ~2 s a search).
os.environ.setdefault("SPECTRA_REPORT_PLOTS", "0")
# In-process searches join the session's `ray start` cluster, which uses token authentication (Ray's
# default); Ray reads the mode when first imported, before the cluster (and its token) exist.
os.environ.setdefault("RAY_AUTH_MODE", "token")
# The session's own token, for every cluster, search and ray.init of the tests: on a fresh machine there is
# no ~/.ray/auth_token, `ray start` in token mode refuses to make one (CI failed on exactly that), and
# tests should not write to the user's home anyway.
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))


@pytest.fixture(scope="session")
def mlflow_store_template(tmp_path_factory):
    """Path of an empty, fully migrated MLflow SQLite store; copy it, never write to it."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # runs the migrations
    return path


@pytest.fixture
def mlflow_client(tmp_path, mlflow_store_template):
    """(client, tracking URI) on a fresh copy of the empty store."""
    from mlflow.tracking import MlflowClient

    path = tmp_path / "mlflow.db"
    shutil.copy(mlflow_store_template, path)
    uri = f"sqlite:///{path}"
    return MlflowClient(uri), uri


@pytest.fixture(scope="session")
def ray_address():
    """A real Ray cluster (``ray start --head``) shared by the session, stopped exactly at its end."""
    from tests.e2e_support import start_ray_cluster, stop_ray_cluster

    address, temp = start_ray_cluster()
    yield address
    stop_ray_cluster(temp)


@pytest.fixture
def workdir(tmp_path, mlflow_store_template):
    """A fresh working directory whose runs/ holds a copy of the pre-migrated empty MLflow store."""
    (tmp_path / "runs").mkdir()
    shutil.copy(mlflow_store_template, tmp_path / "runs" / "mlflow.db")
    return tmp_path


@pytest.fixture(scope="module")
def one_torch_thread():
    """The smoke models are tiny: on 2 busy cores, torch's threads only fight (trials run in-process)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
