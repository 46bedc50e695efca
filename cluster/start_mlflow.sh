#!/usr/bin/env bash
# The MLflow tracking server on the head node of cluster.yaml, (re)started by each `ray up`.
# Bound to 127.0.0.1 only: it is reached through an SSH tunnel (README "On a cluster"), never from the
# internet. Its backend store is SQLite on the head; artifacts go to $SPECTRA_STORAGE/mlflow in S3,
# written by the server itself (proxied artifacts), so the driver needs no S3 access for them.
set -euo pipefail

source "$HOME/spectra-cluster.env"
store="$HOME/mlflow"
pidfile="$store/server.pid"
port="${SPECTRA_MLFLOW_PORT:-5000}"  # another port only for tests on a shared machine
mkdir -p "$store"

# Stop the server an earlier `ray up` started: the process group of this script's own pid file (mlflow
# runs its web server as a child), nothing else.
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill -- "-$(cat "$pidfile")"
    for _ in $(seq 30); do kill -0 -- "-$(cat "$pidfile")" 2>/dev/null || break; sleep 1; done
fi

# Detached from the SSH session that runs this (setsid, no terminal, no inherited output).
setsid nohup "$HOME/venv/bin/mlflow" server \
    --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$store/mlflow.db" \
    --artifacts-destination "$SPECTRA_STORAGE/mlflow" \
    < /dev/null > "$store/server.log" 2>&1 &
echo $! > "$pidfile"

# Ready when /health answers (a new SQLite store first runs its migrations).
for _ in $(seq 60); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then exit 0; fi
    sleep 2
done
echo "MLflow server did not answer on 127.0.0.1:$port; see $store/server.log" >&2
exit 1
