"""The birth of a SQLite MLflow store while another process opens it (issue "Trust the record", part 11).

DESIGN.md, Known ground: two processes migrating a brand-new SQLite store at once collide, and the loser
dies with an alembic traceback. ``open_tracking_store`` (platform/tracking_store.py) must hand the
driver a working store whatever another process (``mlflow ui``, a script polling the store, a second
search) does meanwhile, or say in one line why it cannot. The race itself runs in real processes (slow:
each imports MLflow); the bounds and the repair are checked with a stand-in for MLflow (fast).
"""

from __future__ import annotations

import fcntl
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy.exc

from platform import tracking_store as stores
from platform.options import UsageError
from platform.tracking_store import StoreOpenError, open_tracking_store

ROOT = Path(__file__).resolve().parents[1]

# The other processes import MLflow first (seconds), say they are ready, and start when told.
_START = """
import sys, time
from pathlib import Path
uri, work, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
from mlflow.tracking import MlflowClient
(work / f"{name}.ready").touch()
go = work / f"{name}.go"
while not go.exists():
    time.sleep(0.01)
start = float(go.read_text())
while time.time() < start:
    time.sleep(0.001)
"""
FOREIGN = _START + """
end = time.monotonic() + 120
while time.monotonic() < end:  # a script polling the store; killed by the test when done
    try:
        MlflowClient(uri).search_experiments()
        print("answered", flush=True)
        time.sleep(0.5)
    except Exception as error:
        print(f"failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}", flush=True)
        time.sleep(0.05)
"""
SECOND_SEARCH = _START + """
from platform.tracking_store import open_tracking_store
client = open_tracking_store(uri, timeout_s=90)
client.create_experiment(name, artifact_location=str(work / name))
print("opened", flush=True)
"""
# (case, when the foreign process starts relative to us, in seconds; the migration takes ~3 s alone)
CASES = [("foreign-first", -0.2), ("same-moment", 0.0), ("fraction-after", 0.3), ("mid-migration", 1.5)]


def _start(script: str, uri: str, work: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = work / f"{name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-c", script, uri, str(work), name],
                                   cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return process, log


def _go(work: Path, name: str, at: float) -> None:
    (work / f"{name}.tmp").write_text(repr(at))
    (work / f"{name}.tmp").rename(work / f"{name}.go")


def _sleep_until(at: float) -> None:
    while time.time() < at:
        time.sleep(0.001)


def _use(client, work: Path, name: str) -> None:
    """The store works: an experiment and a finished run with a metric."""
    experiment = client.create_experiment(name, artifact_location=str(work / name))
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "accuracy", 1.0)
    client.set_terminated(run.info.run_id)
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


@pytest.mark.slow
@pytest.mark.long
def test_a_new_store_survives_another_process_opening_it(tmp_path, capfd):
    from mlflow.tracking import MlflowClient  # noqa: F401  (imported before the clock starts)

    started = {case: _start(FOREIGN, f"sqlite:///{tmp_path / case}.db", tmp_path, case) for case, _ in CASES}
    two_searches = f"sqlite:///{tmp_path / 'two-searches'}.db"  # two searches started at once in one runs/
    started["second-search"] = _start(SECOND_SEARCH, two_searches, tmp_path, "second-search")
    try:
        deadline = time.monotonic() + 180
        while not all((tmp_path / f"{name}.ready").exists() for name in started):
            assert time.monotonic() < deadline, "the processes did not import MLflow within 180 s"
            assert all(p.poll() is None for p, _ in started.values()), _logs(started)
            time.sleep(0.1)
        for case, offset in CASES:
            at = time.time() + 0.5
            _go(tmp_path, case, at + offset)
            _sleep_until(at)
            _use(open_tracking_store(f"sqlite:///{tmp_path / case}.db", timeout_s=90), tmp_path, case)
            started[case][0].kill()  # whatever it met (shown below) does not matter to us
        at = time.time() + 0.5
        _go(tmp_path, "second-search", at)
        _sleep_until(at)
        _use(open_tracking_store(two_searches, timeout_s=90), tmp_path, "first-search")
        second, log = started["second-search"]
        assert second.wait(timeout=120) == 0 and "opened" in log.read_text(), log.read_text()
    finally:
        for process, _ in started.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
    ours = capfd.readouterr()
    print(_logs(started))  # what the others met, shown with -rP or on a failure
    assert "Traceback" not in ours.out + ours.err
    assert "Traceback" not in started["second-search"][1].read_text()
    clean = _schema(tmp_path / "two-searches.db")  # created by our two searches, one after the other
    for case, _ in CASES:  # whatever the foreign process did, the store is whole
        assert _schema(tmp_path / f"{case}.db") == clean, case


def _schema(path: Path) -> set[tuple]:
    """Tables with their columns, indexes and the alembic revision. Alembic's leftover copies
    (``_alembic_tmp_*``) are left out: the foreign process may leave one after we are done."""
    with sqlite3.connect(path) as db:
        found: set[tuple] = {("revision", *db.execute("SELECT version_num FROM alembic_version").fetchall())}
        for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                                     "AND tbl_name NOT LIKE '\\_alembic\\_tmp\\_%' ESCAPE '\\'"):
            found.add((kind, name))
            if kind == "table":
                columns = db.execute(f'PRAGMA table_info("{name}")').fetchall()
                found |= {("column", name, *column[1:4]) for column in columns}
    db.close()
    return found


def _logs(started: dict[str, tuple[subprocess.Popen, Path]]) -> str:
    lines = []
    for name, (_, log) in started.items():
        text = log.read_text().strip().splitlines() if log.exists() else []
        failures = sorted({line for line in text if line.startswith("failed:")})
        lines.append(f"{name}: {text[-1] if text else '(nothing)'}"
                     + "".join(f"\n    {line}" for line in failures))
    return "\n".join(lines)


# --- the bounds and the repair, with a stand-in for MLflow ----------------------------------------------
HEAD = "head-revision"


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(stores, "_head_revision", lambda: HEAD)
    monkeypatch.setattr(stores, "_STALL_S", 0.2)
    monkeypatch.setattr(stores, "_YIELD_S", 0.1)
    monkeypatch.setattr(stores, "_POLL_S", 0.02)


def _collision(table: str = "alembic_version") -> sqlalchemy.exc.OperationalError:
    """What the loser of the race raised here (with its multi-line [SQL: ...] tail)."""
    return sqlalchemy.exc.OperationalError(f"CREATE TABLE {table} (...)", None,
                                           sqlite3.OperationalError(f"table {table} already exists"))


def _stuck_at_the_leftover_table(uri: str) -> None:
    raise _collision("_alembic_tmp_tags")


def _half_migrated(path: Path, with_a_run: bool = False) -> None:
    """A file as the collision left it: stuck at an old revision with alembic's batch table aside."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES ('4465047574b1')")
        db.execute("CREATE TABLE experiments (experiment_id INTEGER, name TEXT)")
        db.execute("INSERT INTO experiments VALUES (0, 'Default')")
        db.execute("CREATE TABLE runs (run_uuid TEXT)")
        db.execute("CREATE TABLE _alembic_tmp_tags (key TEXT)")
        if with_a_run:
            db.execute("INSERT INTO runs VALUES ('abc')")
    db.close()


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    return names


def test_gives_up_in_one_line_after_its_bound(fast, monkeypatch, tmp_path):
    attempts = []

    def collide(uri):
        attempts.append(time.monotonic())
        raise _collision()

    monkeypatch.setattr(stores, "_connect", collide)
    path = tmp_path / "mlflow.db"
    began = time.monotonic()
    with pytest.raises(StoreOpenError) as caught:
        open_tracking_store(f"sqlite:///{path}", timeout_s=1.0)
    message = str(caught.value)
    assert isinstance(caught.value, UsageError)  # search.py already reports these in one line, exit 2
    assert "\n" not in message and str(path) in message
    assert "table alembic_version already exists" in message and "try again" in message
    assert len(attempts) >= 3 and time.monotonic() - began < 3.0


def test_rebuilds_a_new_store_a_collision_left_half_migrated(fast, monkeypatch, tmp_path):
    path = tmp_path / "mlflow.db"
    _half_migrated(path)

    def mlflow_open(uri):  # MLflow builds an empty file; it cannot get past the leftover table
        if _tables(path):
            _stuck_at_the_leftover_table(uri)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            db.execute("INSERT INTO alembic_version VALUES (?)", (HEAD,))
        db.close()
        return "client"

    monkeypatch.setattr(stores, "_connect", mlflow_open)
    assert open_tracking_store(f"sqlite:///{path}", timeout_s=10) == "client"
    assert _tables(path) == {"alembic_version"}


def test_leaves_a_half_migrated_store_with_records_alone_and_says_how_to_upgrade(fast, monkeypatch, tmp_path):
    path = tmp_path / "mlflow.db"
    _half_migrated(path, with_a_run=True)
    monkeypatch.setattr(stores, "_connect", _stuck_at_the_leftover_table)
    with pytest.raises(StoreOpenError) as caught:
        open_tracking_store(f"sqlite:///{path}", timeout_s=10)
    assert "\n" not in str(caught.value) and "mlflow db upgrade" in str(caught.value)
    assert "_alembic_tmp_tags" in _tables(path)  # nothing dropped


def test_waits_for_another_search_holding_the_lock_then_says_so(fast, monkeypatch, tmp_path):
    monkeypatch.setattr(stores, "_connect", lambda uri: "client")
    path = tmp_path / "mlflow.db"
    with open(tmp_path / "mlflow.db.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StoreOpenError) as caught:
            open_tracking_store(f"sqlite:///{path}", timeout_s=0.3)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert "\n" not in str(caught.value) and "another search" in str(caught.value)
    assert open_tracking_store(f"sqlite:///{path}", timeout_s=0.3) == "client"  # released: it goes on


def test_a_file_that_is_no_database_is_one_line(fast, monkeypatch, tmp_path):
    monkeypatch.setattr(stores, "_connect", lambda uri: pytest.fail("MLflow should not be reached"))
    path = tmp_path / "mlflow.db"
    path.write_text("not a database, but long enough to have a header " * 4)
    with pytest.raises(StoreOpenError) as caught:
        open_tracking_store(f"sqlite:///{path}", timeout_s=5)
    assert "\n" not in str(caught.value) and "not a database" in str(caught.value)


def test_no_such_index_from_alembic_counts_as_a_collision_and_a_bug_of_ours_does_not():
    alembic_batch = {"__name__": "alembic.operations.batch"}  # alembic raises a plain ValueError there
    exec("def drop_index(name):\n    raise ValueError(f'No such index: {name!r}')", alembic_batch)
    with pytest.raises(ValueError) as from_alembic:
        alembic_batch["drop_index"]("index_jobs_function_status_creation_time")
    assert stores._is_store_error(from_alembic.value)
    assert stores._is_store_error(_collision())
    with pytest.raises(ValueError) as ours:
        raise ValueError("a bug of ours")
    assert not stores._is_store_error(ours.value)


def test_a_folder_it_cannot_write_is_one_line(fast, monkeypatch, tmp_path):
    monkeypatch.setattr(stores, "_connect", lambda uri: pytest.fail("MLflow should not be reached"))
    (tmp_path / "runs").write_text("a file where the folder should be")
    with pytest.raises(StoreOpenError) as caught:
        open_tracking_store(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}", timeout_s=1)
    assert "\n" not in str(caught.value) and "cannot create the MLflow store" in str(caught.value)


def test_drops_the_copies_a_broken_batch_step_left_once_nobody_migrates(fast, monkeypatch, tmp_path):
    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        db.execute("INSERT INTO alembic_version VALUES (?)", (HEAD,))
        db.execute("CREATE TABLE experiments (experiment_id INTEGER)")
        db.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")
        db.execute("CREATE TABLE _alembic_tmp_gone (x INTEGER)")  # its table is missing: not ours to drop
    db.close()
    monkeypatch.setattr(stores, "_connect", lambda uri: "client")
    assert open_tracking_store(f"sqlite:///{path}", timeout_s=10) == "client"
    assert _tables(path) == {"alembic_version", "experiments", "_alembic_tmp_gone"}
