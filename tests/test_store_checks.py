"""Stores that cannot be used are bad input: one line ``error: ...``, exit 2, and nothing created (no MLflow
store, no Optuna database, no runs/ folder), in seconds and before Ray starts (platform/stores.py)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from platform.options import UsageError
from platform.stores import _check_optuna_storage

ROOT = Path(__file__).resolve().parents[1]


def _search(tmp_path: Path, *store_options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "platform.search", "teanet_masks", "--budget", "smoke", *store_options]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _refused(result: subprocess.CompletedProcess, cwd: Path, before: set[str] = frozenset()) -> str:
    """The one error line; asserts exit 2 and that nothing new is in ``cwd``."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert {p.name for p in cwd.iterdir()} == set(before), "bad input created something"
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _needs(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[postgres,mysql]')")


def test_a_tracking_server_that_does_not_answer(tmp_path):
    port = _free_port()
    line = _refused(_search(tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}"), tmp_path)
    assert f"--tracking-uri http://127.0.0.1:{port}: no MLflow server answers" in line


def test_a_missing_driver_names_the_extra_and_the_pymysql_url(tmp_path):
    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed here: mysql:// has its driver")
    line = _refused(_search(tmp_path, "--optuna-storage", "mysql://u:secret@127.0.0.1:1/db"), tmp_path)
    assert "its database driver is not installed" in line and "MySQLdb" in line
    assert ".[mysql]" in line and "mysql+pymysql://" in line
    assert "secret" not in line, "the password is not printed"


def test_a_missing_postgres_driver_names_the_postgres_extra(tmp_path):
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    line = _refused(_search(tmp_path, "--optuna-storage", "postgresql+psycopg2://u:p@127.0.0.1:1/db"),
                    tmp_path)
    assert "No module named 'psycopg2'" in line and ".[postgres]" in line


def test_a_database_server_that_does_not_answer(tmp_path):
    _needs("psycopg")
    line = _refused(_search(tmp_path, "--optuna-storage", "postgresql://u:p@127.0.0.1:1/db"), tmp_path)
    assert "no database answers at 127.0.0.1:1" in line


def test_sqlite_in_a_folder_that_cannot_be_created(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a_file' / 'sub' / 'optuna.db'}"
    line = _refused(_search(tmp_path, "--optuna-storage", url), tmp_path, before={"a_file"})
    assert f"cannot create a store in {tmp_path / 'a_file' / 'sub'}" in line


def test_a_url_no_database_dialect_knows(tmp_path):
    line = _refused(_search(tmp_path, "--optuna-storage", "nosuchdb://host/db"), tmp_path)
    assert "not a database URL SQLAlchemy knows" in line


# --- in-process: a login that gets no answer is bounded by the driver's timeout ----------------------
@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (not a database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.parametrize(("scheme", "module"), [("mysql+pymysql", "pymysql"), ("postgresql", "psycopg")])
def test_a_port_that_answers_but_is_no_database(silent_server, scheme, module):
    _needs(module)
    with pytest.raises(UsageError, match="cannot log in to the database"):
        _check_optuna_storage(f"{scheme}://u:p@127.0.0.1:{silent_server}/db")


def test_a_sqlite_url_passes_the_driver_check(tmp_path):
    _check_optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert not (tmp_path / "optuna.db").exists(), "checking creates nothing"
