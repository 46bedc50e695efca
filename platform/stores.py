"""Where a search keeps its records, and the checks that they can be reached.

With no options everything lands in ``./runs/``: ``runs/mlflow.db`` (and ``runs/mlflow-artifacts/``),
``runs/optuna.db`` and ``runs/ray/`` (DESIGN.md, "Command-line conventions"). Nothing here creates a
store: :func:`resolve_stores` only decides the locations and checks that servers answer.
"""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from platform.options import SearchRequest, UsageError

_REACH_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Stores:
    tracking_uri: str  # MLflow
    artifact_root: str | None  # for a local SQLite store; a server decides its own
    optuna_url: str
    ray_storage: str  # absolute path or URI for Ray's results

    def describe(self) -> list[str]:
        browse = f"mlflow ui --backend-store-uri {self.tracking_uri}"
        if self.tracking_uri.startswith("http"):
            browse = f"open {self.tracking_uri} in a browser"
        return [
            f"MLflow store:   {self.tracking_uri}",
            f"Optuna storage: {self.optuna_url}   (optuna-dashboard {self.optuna_url})",
            f"Ray results:    {self.ray_storage}",
            f"Browse with:    {browse}",
        ]


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


def check_reachable(request: SearchRequest, stores: Stores) -> None:
    """Fail fast (seconds, not Ray's or MLflow's minutes of retries) when a server does not answer."""
    if stores.tracking_uri.startswith("http"):
        _check_mlflow_server(stores.tracking_uri)
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
