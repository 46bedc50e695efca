"""Our `platform` package stands in for the standard-library module (DESIGN.md, "The name platform")."""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import platform

ROOT = Path(__file__).resolve().parents[1]
STANDARD_FACTS = (
    "import json, platform; print(json.dumps({'system': platform.system(), 'machine': platform.machine(),"
    " 'python_version': platform.python_version(), 'uname': list(platform.uname()),"
    " 'is_package': hasattr(platform, '__path__')}))"
)


def _standard_module_facts() -> dict:
    """Ask a fresh interpreter outside the repository, where `import platform` is the standard one."""
    out = subprocess.run(
        [sys.executable, "-c", STANDARD_FACTS], cwd="/", capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_tests_see_our_package():
    assert hasattr(platform, "__path__")
    assert Path(platform.__file__).parent == ROOT / "platform"


def test_functions_answer_as_the_standard_module_does():
    standard = _standard_module_facts()
    assert standard["is_package"] is False
    assert platform.system() == standard["system"]
    assert platform.machine() == standard["machine"]
    assert platform.python_version() == standard["python_version"]
    assert list(platform.uname()) == standard["uname"]


def test_uname_result_pickles_round_trip():
    assert pickle.loads(pickle.dumps(platform.uname())) == platform.uname()


def test_submodule_shadowing_a_standard_function_is_refused(tmp_path):
    package = tmp_path / "platform"
    package.mkdir()
    shutil.copy(ROOT / "platform" / "__init__.py", package / "__init__.py")
    (package / "version.py").write_text("")
    result = subprocess.run(
        [sys.executable, "-c", "import platform"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "['version'] shadow functions" in result.stderr


@pytest.mark.slow  # `platform.doctor --full` starts a local Ray instance: ~30 s on 2 cores
def test_stack_works_when_launched_as_platform_submodule():
    """torch, numpy, pandas, optuna, mlflow and ray each do real work under `python -m platform.doctor`."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "platform.doctor", "--full"],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("backward ok", "groupby sums [6, 9]", "5 trials", "logged to SQLite", "returned 49"):
        assert line in result.stdout, result.stdout


PROBE = "tests/probes/import_platform_package.py"


def _pytest_launchers() -> dict[str, list[str]]:
    console_script = Path(sys.executable).with_name("pytest")
    return {"pytest": [str(console_script)], "python -m pytest": [sys.executable, "-m", "pytest"]}


def test_import_platform_submodule_under_both_pytest_launchers():
    for name, launcher in _pytest_launchers().items():
        result = subprocess.run(
            [*launcher, "-q", "-p", "no:cacheprovider", PROBE], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
        assert "1 passed" in result.stdout, f"{name}: {result.stdout}"


def test_the_probe_fails_when_our_package_answers_otherwise():
    """The probe compares with the standard module's own answer, not with any non-empty one."""
    lying = ("import platform, sys, pytest; platform.release = lambda: 'not-the-kernel'; "
             f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {PROBE!r}]))")
    result = subprocess.run([sys.executable, "-c", lying], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0, result.stdout
    assert "1 failed" in result.stdout and "not-the-kernel" in result.stdout, result.stdout
