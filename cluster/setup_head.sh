#!/usr/bin/env bash
# The head node of cluster.yaml, after setup_node.sh. Usage: setup_head.sh RAY_BOOTSTRAP_CONFIG
# boto3 for Ray's AWS autoscaler and MLflow's S3 artifacts, optuna-dashboard for the Optuna study, tmux so
# a search survives a dropped SSH session, and $SPECTRA_STORAGE (metadata.shared_storage of cluster.yaml)
# in every shell on the head.
set -euo pipefail

config="$1"
venv="$HOME/venv"

"$venv/bin/pip" install -q "boto3>=1.26" "optuna-dashboard>=0.17"
if ! command -v tmux >/dev/null; then
    sudo apt-get -o DPkg::Lock::Timeout=600 update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q tmux
fi

storage="$("$venv/bin/python" - "$config" <<'PY'
import sys

import yaml

with open(sys.argv[1]) as file:
    print(yaml.safe_load(file)["metadata"]["shared_storage"].rstrip("/"))
PY
)"
echo "export SPECTRA_STORAGE=$storage" > "$HOME/spectra-cluster.env"
line="source $HOME/spectra-cluster.env"
grep -qxF "$line" "$HOME/.bashrc" || echo "$line" >> "$HOME/.bashrc"
