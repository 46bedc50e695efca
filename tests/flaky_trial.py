"""A trial function that fails on purpose for one mask scheme (used by tests/test_search_e2e.py):
the real TeaNet trial otherwise, so the search around it is the real one."""

from trials.teanet import run_trial as teanet_trial


def run_trial(config, report):
    if config["mask.scheme"] == "MS3":
        raise RuntimeError("injected failure: this test trial refuses MS3")
    return teanet_trial(config, report)
