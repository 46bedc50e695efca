"""Where a search keeps its records, and the checks that they can be reached.

With no options everything lands in ``./runs/``: ``runs/mlflow.db`` (and ``runs/mlflow-artifacts/``),
``runs/optuna.db`` and ``runs/ray/`` (DESIGN.md, "Command-line conventions"). Nothing here creates a
store: :func:`resolve_stores` only decides the locations and checks that servers answer
(platform/tracking_store.py creates the MLflow store; :func:`make_sqlite_folder` the folder of the Optuna
database, when the search opens it).
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from platform.options import SearchRequest, UsageError

_REACH_TIMEOUT_S = 3.0
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}
# connect() arguments that bound a login, in seconds, for the drivers of the extras: psycopg and psycopg2
# bound the whole login with connect_timeout; pymysql and mysqlclient only the TCP connect, so a server
# that never answers needs their read/write timeouts too.
_LOGIN_TIMEOUTS = {"postgresql": ("connect_timeout",),
                   "mysql": ("connect_timeout", "read_timeout", "write_timeout")}
_LOGIN_TIMEOUTS["mariadb"] = _LOGIN_TIMEOUTS["mysql"]


@dataclass(frozen=True)
class Stores:
    tracking_uri: str  # MLflow
    artifact_root: str | None  # for a local SQLite store; a server decides its own
    optuna_url: str
    ray_storage: str  # absolute path or URI for Ray's results

    def describe(self, experiment_id: str | None = None) -> list[str]:
        """The lines a search prints about its stores, with the commands that open them."""
        from platform.tracking import runs_page

        browse = f"mlflow ui --backend-store-uri {self.tracking_uri}"
        if self.tracking_uri.startswith("http"):
            browse = f"open {self.tracking_uri} in a browser"
        lines = [
            f"MLflow store:   {self.tracking_uri}",
            f"Optuna storage: {self.optuna_url}   ({optuna_dashboard_hint(self.optuna_url)})",
            f"Ray results:    {self.ray_storage}",
            f"Browse with:    {browse}",
        ]
        if experiment_id is not None:  # the UI opens on its GenAI view: the study's runs are here
            lines.append(f"Runs page:      {runs_page(self.tracking_uri, experiment_id)}")
        return lines


def optuna_dashboard_hint(optuna_url: str) -> str:
    """The optuna-dashboard command when it is installed (the README's set-up installs the
    ``dashboard`` extra), else how to install it: every command printed works as printed."""
    import importlib.util

    if importlib.util.find_spec("optuna_dashboard") is None:
        return 'optuna-dashboard: pip install -e ".[dashboard]"'
    return f"optuna-dashboard {optuna_url}"


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def resolve_tracking_uri(option: str | None, runs: Path) -> tuple[str, str | None]:
    """(tracking URI, artifact root). A directory means ``sqlite:///DIR/mlflow.db``."""
    if option is None:
        return f"sqlite:///{runs / 'mlflow.db'}", str(runs / "mlflow-artifacts")
    if option.startswith(("http://", "https://")):
        return option.rstrip("/"), None
    if option.startswith("sqlite:///"):
        database = _sqlite_path(option).resolve()
        return f"sqlite:///{database}", str(database.parent / "mlflow-artifacts")
    if "://" in option:
        raise UsageError(f"--tracking-uri {option}: expected http(s)://, sqlite:/// or a directory")
    directory = Path(option).resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--tracking-uri {option}: expected a directory, found a file")
    return f"sqlite:///{directory / 'mlflow.db'}", str(directory / "mlflow-artifacts")


def resolve_stores(request: SearchRequest, cwd: Path | None = None) -> Stores:
    runs = (cwd or Path.cwd()).resolve() / "runs"
    tracking_uri, artifact_root = resolve_tracking_uri(request.tracking_uri, runs)
    optuna_url = request.optuna_storage or f"sqlite:///{runs / 'optuna.db'}"
    if "://" not in optuna_url:
        raise UsageError(f"--optuna-storage {optuna_url}: expected a database URL such as sqlite:///file.db")
    ray_storage = request.storage or str(runs / "ray")
    if "://" not in ray_storage:
        ray_storage = str(Path(ray_storage).resolve())  # Tune needs an absolute path
    return Stores(tracking_uri, artifact_root, optuna_url, ray_storage)


def make_sqlite_folder(url: str) -> None:
    """Create the folder of a SQLite database (SQLite makes the file, not its folder): needed by the
    Optuna study when no local MLflow store has created runs/ already (a tracking server)."""
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def check_reachable(request: SearchRequest, stores: Stores) -> None:
    """Fail fast (seconds, not Ray's or MLflow's minutes of retries) when a server does not answer or a
    database driver is missing: before anything is created, so bad input leaves nothing behind."""
    if stores.tracking_uri.startswith("http"):
        _check_mlflow_server(stores.tracking_uri)
    _check_optuna_storage(stores.optuna_url)
    for url in (stores.tracking_uri, stores.optuna_url):
        path = _sqlite_path(url)
        if path is not None and not path.parent.exists() and not _creatable(path.parent):
            raise UsageError(f"cannot create a store in {path.parent}")
    if request.address and request.address != "auto":
        _check_ray_address(request.address)


def _creatable(directory: Path) -> bool:
    existing = next((p for p in [directory, *directory.parents] if p.exists()), None)
    return existing is not None and existing.is_dir() and os.access(existing, os.W_OK)


def _check_mlflow_server(uri: str) -> None:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=_REACH_TIMEOUT_S) as response:
            if response.status != 200:
                raise UsageError(f"--tracking-uri {uri}: the server answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UsageError(f"--tracking-uri {uri}: no MLflow server answers ({reason})") from None


def _check_optuna_storage(url: str) -> None:
    """The URL names a dialect SQLAlchemy knows, its driver imports, and (a server) it answers and lets
    us in. Otherwise Optuna would fail only after the MLflow store and the search's parent run exist."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        option = f"--optuna-storage {parsed.render_as_string(hide_password=True)}"
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        raise UsageError(f"--optuna-storage {url}: not a database URL SQLAlchemy knows ({error})") from None
    import_driver = getattr(dialect, "import_dbapi", None) or dialect.dbapi  # SQLAlchemy 2 / 1.4
    try:  # get_dialect() loads SQLAlchemy's dialect module only; the driver is imported here
        import_driver()
    except ImportError as error:
        raise UsageError(f"{option}: its database driver is not installed ({error}): "
                         f"{_driver_hint(parsed.get_backend_name(), dialect.driver)}") from None
    if parsed.get_backend_name() != "sqlite":  # a SQLite file: its folder is checked by check_reachable
        _check_database_answers(option, parsed)


def _driver_hint(backend: str, driver: str) -> str:
    if backend == "postgresql" and driver != "psycopg2":
        return ("pip install -e '.[postgres]' (psycopg 3, SQLAlchemy 2.1's driver for postgresql://; "
                "postgresql+psycopg:// names it on any SQLAlchemy 2)")
    if backend == "postgresql":
        return "pip install psycopg2-binary, or pip install -e '.[postgres]' and write postgresql+psycopg://"
    if backend in ("mysql", "mariadb"):
        return (f"pip install -e '.[mysql]' (pymysql) and write the URL as {backend}+pymysql://... "
                f"(plain {backend}:// means mysqlclient, which builds against the MySQL client library)")
    return f"install the Python package of SQLAlchemy's {backend}+{driver} driver"


def _check_database_answers(option: str, parsed: Any) -> None:
    """A TCP connect (seconds), then a login with the driver's own timeout where we know its name."""
    backend = parsed.get_backend_name()
    host, port = parsed.host, parsed.port or _DEFAULT_PORTS.get(backend)
    if host and port:
        try:
            with socket.create_connection((host, port), timeout=_REACH_TIMEOUT_S):
                pass
        except OSError as error:
            raise UsageError(f"{option}: no database answers at {host}:{port} ({error})") from None
    if backend not in _LOGIN_TIMEOUTS:  # a login without a timeout could hang: the TCP check must do
        return
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    timeouts = dict.fromkeys(_LOGIN_TIMEOUTS[backend], int(_REACH_TIMEOUT_S))
    engine = create_engine(parsed, poolclass=NullPool, connect_args=timeouts)
    try:
        with engine.connect():
            pass
    except Exception as error:  # the driver's own errors: wrong password, no such database, not a database
        lines = str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__]
        raise UsageError(f"{option}: cannot log in to the database ({lines[0][:300]})") from None
    finally:
        engine.dispose()


def _check_ray_address(address: str) -> None:
    target = address.removeprefix("ray://")
    parsed = urlparse(f"//{target}")
    host, port = parsed.hostname, parsed.port or (10001 if address.startswith("ray://") else 6379)
    if not host:
        raise UsageError(f"--address {address}: expected host:port")
    try:
        with socket.create_connection((host, port), timeout=_REACH_TIMEOUT_S):
            pass
    except OSError as error:
        raise UsageError(f"--address {address}: no Ray cluster answers at {host}:{port} ({error})") from None


def open_existing_store(option: str | None) -> Any:
    """An MlflowClient on the store a search wrote (``--tracking-uri``, default runs/mlflow.db), for the
    commands that read it; UsageError when there is none (opening a missing SQLite file would make one)."""
    from mlflow.tracking import MlflowClient

    uri, _ = resolve_tracking_uri(option, Path.cwd().resolve() / "runs")
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UsageError(f"no MLflow store at {uri.removeprefix('sqlite:///')}: run a search first")
    if uri.startswith("http"):
        _check_mlflow_server(uri)
    return MlflowClient(uri)
