"""Search ids never collide, and a new search never continues another's Optuna study (issue "Trust the
record", part 6)."""

from __future__ import annotations

import re
import types

import optuna
import pytest

from platform.runner import _open_optuna_study
from platform.search import new_search_id
from search_spaces import load_study


def test_two_searches_started_in_the_same_second_get_distinct_ids():
    ids = {new_search_id("teanet_masks", "quick", "search") for _ in range(200)}
    assert len(ids) == 200
    for search_id in ids:
        assert re.fullmatch(r"teanet_masks-quick-search-\d{8}-\d{6}-[0-9a-f]{6}", search_id), search_id


def _search(url: str, search_id: str, attempt: int):
    request = types.SimpleNamespace(study=load_study("teanet_masks"), objectives=None)
    return types.SimpleNamespace(search_id=search_id, attempt=attempt, request=request,
                                 stores=types.SimpleNamespace(optuna_url=url))


def test_a_new_search_never_continues_an_existing_study_but_a_resumed_one_does(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = _open_optuna_study(_search(url, "s-1", attempt=0))
    first.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        _open_optuna_study(_search(url, "s-1", attempt=0))  # a new search with the same id
    resumed = _open_optuna_study(_search(url, "s-1", attempt=1))
    assert len(resumed.trials) == 1 and resumed.metric_names == ["val_accuracy"]
