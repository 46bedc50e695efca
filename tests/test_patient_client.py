"""A store busy with another process's write is waited out, never ends a search (tracking_store.py)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from platform.tracking_store import PatientClient, open_tracking_store

LOCKED = "(sqlite3.OperationalError) database is locked"


class FlakyClient:
    def __init__(self, failures: int, error_code=TEMPORARILY_UNAVAILABLE, message: str = LOCKED):
        self.failures, self.error_code, self.message, self.calls = failures, error_code, message, 0
        self.tracking_uri = "sqlite:///x.db"

    def log_batch(self, run_id: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise MlflowException(self.message, error_code=self.error_code)
        return f"logged {run_id}"


def test_a_locked_store_is_called_again_until_it_answers():
    flaky, pauses = FlakyClient(failures=3), []
    client = PatientClient(flaky, sleep=pauses.append)
    assert client.log_batch("r1") == "logged r1"
    assert flaky.calls == 4 and pauses == [0.2, 0.4, 0.8]
    assert client.tracking_uri == "sqlite:///x.db"  # attributes pass through


def test_other_errors_and_an_exhausted_patience_are_raised():
    other = FlakyClient(failures=1, error_code=INVALID_PARAMETER_VALUE, message="bad value")
    with pytest.raises(MlflowException, match="bad value"):
        PatientClient(other, sleep=lambda s: None).log_batch("r1")
    assert other.calls == 1
    forever = FlakyClient(failures=10**6)
    with pytest.raises(MlflowException, match="locked"):
        PatientClient(forever, patience_s=0.0, sleep=lambda s: None).log_batch("r1")
    assert forever.calls == 1


def test_a_write_waits_for_another_process_holding_the_store(tmp_path):
    """Another connection holds SQLite's write lock; the write lands once it lets go (MLflow's own 20 s
    busy timeout covers this one; the patient client covers the collisions SQLite refuses at once)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = PatientClient(open_tracking_store(uri))
    run = client.create_run(client.create_experiment("held"))
    holder = sqlite3.connect(tmp_path / "mlflow.db", check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    started = time.monotonic()
    client.log_batch(run.info.run_id, metrics=[Metric("accuracy", 0.5, 0, 1)])
    assert time.monotonic() - started >= 1.0
    assert [m.value for m in client.get_metric_history(run.info.run_id, "accuracy")] == [0.5]
    release.join()
    holder.close()
