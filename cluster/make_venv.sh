#!/usr/bin/env bash
# Every node of cluster.yaml, at `ray up` and on each new worker: a Python venv at ~/venv (cluster.yaml then
# installs this repository into it), activated by ~/.bashrc so `python` and `ray` are the venv's in a shell.
# Safe to run again (each `ray up` does).
set -euo pipefail

venv="$HOME/venv"

if [ ! -x "$venv/bin/pip" ]; then
    rm -rf "$venv"  # a venv made without ensurepip has no pip: start again
    if ! python3 -m venv "$venv"; then
        rm -rf "$venv"
        # Ubuntu's python3 lacks venv until python3-venv is installed; at boot apt may still be locked.
        sudo apt-get -o DPkg::Lock::Timeout=600 update -q
        sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q python3-venv
        python3 -m venv "$venv"
    fi
fi

"$venv/bin/pip" install -q --upgrade pip

line="source $venv/bin/activate"
grep -qxF "$line" "$HOME/.bashrc" || echo "$line" >> "$HOME/.bashrc"
