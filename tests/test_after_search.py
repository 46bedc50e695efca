"""A study's own end-of-search outputs (Study.after_search, called by platform/runner.py): they get the
best trial and the data; their failure is said and tagged, never undoes the search."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from platform.runner import _after_search
from search_spaces import load_study

ROWS = [{"trial": "trial-0001", "run_id": "a", "val_accuracy": 0.5, "status": "FINISHED"},
        {"trial": "trial-0002", "run_id": "b", "val_accuracy": 0.9, "status": "FINISHED"}]


def search_with(hook, client, parent_run_id: str):
    study = dataclasses.replace(load_study("teanet_masks"), after_search=hook)
    request = SimpleNamespace(study=study, data={"spectra": 1})
    return SimpleNamespace(request=request, client=client, parent_run_id=parent_run_id, kind="search")


def test_the_hook_gets_the_best_trial_and_the_data(mlflow_client):
    client, _ = mlflow_client
    seen = []
    parent = client.create_run("0").info.run_id
    _after_search(search_with(seen.append, client, parent), [dict(row) for row in ROWS])
    (end,) = seen
    assert end.best["run_id"] == "b" and end.data == {"spectra": 1} and end.parent_run_id == parent
    assert len(end.rows) == 2 and end.kind == "search"


def test_a_failing_hook_is_said_and_tagged_and_the_search_stands(mlflow_client, capsys):
    client, _ = mlflow_client
    parent = client.create_run("0").info.run_id

    def broken(end):
        raise RuntimeError("no figure today\nsecond line")

    _after_search(search_with(broken, client, parent), [dict(row) for row in ROWS])
    said = capsys.readouterr().err
    assert "teanet_masks's end-of-search outputs failed: RuntimeError: no figure today" in said
    assert client.get_run(parent).data.tags["after_search_error"] == "RuntimeError: no figure today"
