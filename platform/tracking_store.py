"""Opening the MLflow store: the one place a new SQLite store is created (migrated), safely against other
processes that open the same brand-new file at the same time (``mlflow ui``, a script polling it, a second
search in the same runs/ folder). DESIGN.md "Known ground": MLflow migrates without a lock and the loser
of such a race dies with an alembic traceback.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform.options import UsageError
from platform.stores import _sqlite_path

try:
    import fcntl
except ImportError:  # Windows: the store is opened without our lock (the watching still applies)
    fcntl = None

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# What a collision raises, reproduced here (mlflow 3.17.2, sqlalchemy 2.1.9, alembic 1.20.1, 2 CPUs): two
# processes started at the same instant, each running `MlflowClient("sqlite:///NEW.db").search_experiments()`
# on the same new file, collided in 6 of 6 tries. The loser raised sqlalchemy.exc.OperationalError
# ("table alembic_version already exists", "table registered_model_tags already exists", "duplicate column
# name: step", "table _alembic_tmp_tags already exists") or alembic.util.exc.CommandError ("Online
# migration expected to match one row when updating 'df50e92ffc5e' to '7ac759974ad8' in 'alembic_version';
# 0 found"). A process polling a store being created (tests/test_store_birth.py) also met alembic's
# ValueError "No such index: 'index_jobs_function_status_creation_time'" (DESIGN.md's "No such index"),
# sqlalchemy's NoSuchTableError and CircularDependencyError. In 1 of the 6 both died and left the file stuck
# half-migrated (revision 4465047574b1 plus a leftover table _alembic_tmp_tags): every later open failed
# the same way, so waiting alone cannot mend such a store. MLflow's tracking store migrates without any
# lock (its own ExclusiveFileLock guards only its jobs and workspace stores), so a foreign `mlflow ui` or
# script never takes ours: besides the lock, watch the schema and let whoever is migrating finish.
_OPEN_TIMEOUT_S = 60.0
_STALL_S = 5.0  # schema unchanged this long: nobody is migrating (steps here are < 0.4 s apart)
_YIELD_S = 1.0  # an empty file, or one we just emptied: time for whoever created it to start migrating
_POLL_S = 0.1
_MAX_RESETS = 3
# Rows that mean the store holds someone's records (the Default experiment, id 0, is MLflow's own).
_RECORDS = {"runs": "", "experiments": " WHERE experiment_id != 0", "registered_models": "",
            "logged_models": "", "trace_info": ""}


class StoreOpenError(UsageError):
    """The MLflow store could not be opened or created: said in one line (what happened, what to do)."""


@dataclass(frozen=True)
class _Schema:
    exists: bool
    tables: frozenset[str] = frozenset()
    revision: str | None = None  # alembic's
    version: int = 0  # SQLite's schema cookie: bumped by every CREATE/ALTER/DROP
    busy: bool = False  # locked by a writer right now

    def half_built(self, head: str) -> bool:
        return bool(self.tables) and self.revision != head


def open_tracking_store(tracking_uri: str, timeout_s: float = _OPEN_TIMEOUT_S) -> MlflowClient:
    """A client whose store exists and is fully migrated; the one place a new SQLite store is created.

    Another process may open the same brand-new file meanwhile (``mlflow ui``, a script polling it, a
    second search in the same runs/ folder). Our processes take turns through an exclusive lock on
    ``<db>.lock``; a foreign one is watched: we wait while the schema changes, retry once it is migrated,
    and rebuild a store that a collision left half-migrated, as long as it holds no records. Gives up after
    ``timeout_s`` (waiting for the lock, then opening; checked between MLflow's attempts, which are not
    interrupted) with a one-line :class:`StoreOpenError`, which search.py reports like any UsageError.
    A server (http/https) or another database is left to MLflow: only its client is returned.
    """
    path = _sqlite_path(tracking_uri.split("?", 1)[0])
    if path is None or str(path) == ":memory:":
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri)
    path = path.resolve()
    with contextlib.ExitStack() as held:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            held.enter_context(_exclusive(path.with_name(path.name + ".lock"), timeout_s, path))
        except OSError as error:
            raise StoreOpenError(f"cannot create the MLflow store {path}: {error}") from None
        return _open_sqlite(tracking_uri, path, time.monotonic() + timeout_s, timeout_s)


@contextlib.contextmanager
def _exclusive(lock_path: Path, timeout_s: float, path: Path) -> Iterator[None]:
    """flock on a file beside the store (kept: removing it would let a waiter lock a stale inode)."""
    if fcntl is None:
        yield
        return
    with open(lock_path, "a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreOpenError(
                        f"another search has been creating the MLflow store {path} for over "
                        f"{timeout_s:.0f} s (it holds {lock_path}): try again when it has started, or use "
                        "another --tracking-uri") from None
                time.sleep(_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_sqlite(uri: str, path: Path, deadline: float, timeout_s: float) -> MlflowClient:
    head = _head_revision()
    resets = 0
    last_error: BaseException | None = None
    while True:
        schema = _peek(path)
        if schema.exists:  # someone may be migrating it: let them finish (or stop) before we touch it
            schema = _wait_while_migrating(path, head, _STALL_S if schema.tables else _YIELD_S, deadline)
        if time.monotonic() > deadline:
            reason = _first_line(last_error, "its schema kept changing")
            raise StoreOpenError(
                f"could not create the MLflow store {path} within {timeout_s:.0f} s while another process "
                f"was opening it too ({reason}): stop that process (e.g. `mlflow ui`) until the search "
                "has started, then try again")
        if schema.half_built(head):  # stuck: nobody has changed it for _STALL_S
            try:
                records = _holds_records(path)
                if not records and resets < _MAX_RESETS:  # a new store: rebuild it, nothing is lost
                    if _reset_if_empty(path):
                        resets, last_error = resets + 1, None
                        continue
                    records = True
            except sqlite3.OperationalError:  # locked: someone is writing to it after all
                continue
            if not records:
                raise StoreOpenError(
                    f"the MLflow store {path} was left half-migrated {resets} times by another process "
                    f"creating it at the same time ({_first_line(last_error)}): stop that process "
                    "(e.g. `mlflow ui`) until the search has started, then try again")
            if last_error is not None:  # an older or damaged store with records: MLflow had its try
                raise StoreOpenError(
                    f"the MLflow store {path} holds records but its schema is {schema.revision}, not "
                    f"{head} ({_first_line(last_error)}): back it up and run `mlflow db upgrade {uri}`, "
                    "or use another --tracking-uri")
        try:
            client = _connect(uri)
        except Exception as error:
            if not _is_store_error(error):
                raise
            last_error = error
            time.sleep(_POLL_S)
            continue
        _drop_leftovers(path, deadline)
        return client


def _connect(uri: str) -> MlflowClient:
    """MLflow's own open, which creates and migrates a new store; answers once it is usable."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    client.search_experiments(max_results=1)
    return client


def _head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision  # private, checked on mlflow 3.17

    return _get_latest_schema_revision()


def _is_store_error(error: BaseException) -> bool:
    """What a collision raises: sqlalchemy's, alembic's or MLflow's errors, sqlite3's own, or anything raised
    from inside their code (alembic's "No such index" is a plain ValueError). Decided by module names, so
    that classifying an error does not import MLflow."""
    if isinstance(error, (sqlite3.Error, OSError)):
        return True
    modules = [type(error).__module__]
    frame = error.__traceback__
    while frame is not None:
        modules.append(frame.tb_frame.f_globals.get("__name__", ""))
        frame = frame.tb_next
    return any(module.split(".")[0] in ("sqlalchemy", "alembic") or module.startswith("mlflow.store")
               or module == "mlflow.exceptions" for module in modules)


def _first_line(error: BaseException | None, otherwise: str = "") -> str:
    if error is None:
        return otherwise
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


@contextlib.contextmanager
def _database(path: Path, read_only: bool) -> Iterator[sqlite3.Connection]:
    target = f"{path.as_uri()}?mode=ro" if read_only else path.as_uri()
    connection = sqlite3.connect(target, uri=True, timeout=0.5 if read_only else 10.0,
                                 isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def _peek(path: Path) -> _Schema:
    if not path.exists():
        return _Schema(exists=False)
    try:
        with _database(path, read_only=True) as db:
            version = db.execute("PRAGMA schema_version").fetchone()[0]
            tables = frozenset(row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
            revision = None
            if "alembic_version" in tables:
                row = db.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
            return _Schema(True, tables, revision, version)
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return _Schema(exists=True, busy=True)
        if "no such table" in str(error):  # dropped between our two reads
            return _Schema(exists=True, busy=True)
        raise StoreOpenError(f"cannot open the MLflow store {path}: {error}") from None
    except sqlite3.DatabaseError as error:
        raise StoreOpenError(f"cannot open the MLflow store {path}: {error}") from None


def _wait_while_migrating(path: Path, head: str | None, quiet_s: float, deadline: float) -> _Schema:
    """Returns once the store is migrated (at ``head``; None: never), or nothing has changed it for
    ``quiet_s`` (after a first change, for _STALL_S), or at the deadline."""
    last = _peek(path)
    since = time.monotonic()
    while last.busy or (last.exists and (head is None or last.revision != head)):
        if time.monotonic() - since >= quiet_s or time.monotonic() > deadline:
            break
        time.sleep(_POLL_S)
        now = _peek(path)
        if now.busy or (now.exists, now.version, now.revision) != (last.exists, last.version, last.revision):
            since = time.monotonic()
            quiet_s = max(quiet_s, _STALL_S)
        last = now
    return last


def _holds_records(path: Path, db: sqlite3.Connection | None = None) -> bool:
    if db is None:
        with _database(path, read_only=True) as db:
            return _holds_records(path, db)
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, where in _RECORDS.items():
        for name in (table, f"_alembic_tmp_{table}"):  # a batch migration copies a table aside
            if name in tables and db.execute(f'SELECT 1 FROM "{name}"{where} LIMIT 1').fetchone():
                return True
    return False


def _reset_if_empty(path: Path) -> bool:
    """Drop every table of a store that holds no records, in one transaction; False if it holds some."""
    with _database(path, read_only=False) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            if _holds_records(path, db):
                db.execute("ROLLBACK")
                return False
            objects: list[Any] = db.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite_%'").fetchall()
            for kind, name in objects:
                db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            db.execute("COMMIT")
            return True
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise


def _drop_leftovers(path: Path, deadline: float) -> None:
    """A batch step that a collision broke leaves ``_alembic_tmp_<table>`` beside the table it was copying
    (seen after a foreign process lagging behind the migration gave up, with the store at head): harmless
    today, but the next MLflow upgrade that touches the table would fail on it. Once nobody is changing
    the schema, drop such copies whose table exists. Best effort: the store works either way."""
    if not any(_leftovers(_peek(path).tables)):
        return
    _wait_while_migrating(path, None, _STALL_S, deadline)
    if time.monotonic() > deadline:  # it never settled: leave them
        return
    with contextlib.suppress(sqlite3.Error), _database(path, read_only=False) as db:
        db.execute("BEGIN IMMEDIATE")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for name in _leftovers(tables):
            db.execute(f'DROP TABLE "{name}"')
        db.execute("COMMIT")


def _leftovers(tables: frozenset[str] | set[str]) -> list[str]:
    prefix = "_alembic_tmp_"
    return [name for name in tables if name.startswith(prefix) and name.removeprefix(prefix) in tables]


class PatientClient:
    """An MlflowClient whose calls wait out a busy SQLite store instead of failing the search.

    MLflow gives a locked SQLite database 20 s (its busy_timeout), but some collisions fail at once: SQLite
    refuses a reader's upgrade to a writer while another writer waits, rather than deadlock. Any process
    reading the store during a search (``mlflow ui``, a notebook, a test polling it) can cause one, and a
    Tune callback that raises ends the whole search (CI met it: "database is locked" on a trial's start).
    A failed write was rolled back, so calling again is safe. Other errors pass through unchanged.
    """

    def __init__(self, client: MlflowClient, patience_s: float = 120.0,
                 sleep: Any = time.sleep) -> None:
        self._client = client
        self._patience_s = patience_s
        self._sleep = sleep

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def patiently(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + self._patience_s
            pause = 0.2
            while True:
                try:
                    return method(*args, **kwargs)
                except Exception as error:  # noqa: BLE001  (re-raised unless the store was only busy)
                    if not _store_busy(error) or time.monotonic() + pause > deadline:
                        raise
                    self._sleep(pause)
                    pause = min(pause * 2, 5.0)

        return patiently


def _store_busy(error: BaseException) -> bool:
    """MLflow's word for a locked database (its SQLAlchemy store maps OperationalError to it)."""
    return (getattr(error, "error_code", None) == "TEMPORARILY_UNAVAILABLE"
            and "locked" in str(error).lower())
