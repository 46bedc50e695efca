"""Run by tests/test_platform_standin.py under `pytest` and `python -m pytest` (not collected by default)."""

import pickle


def test_platform_package_is_ours_and_answers_like_the_standard_module():
    import platform
    import platform.doctor  # noqa: F401  (the import under test)

    assert hasattr(platform, "__path__"), "the standard module was imported, not our package"
    assert platform.system() == "Linux" or platform.system()
    assert pickle.loads(pickle.dumps(platform.uname())) == platform.uname()
