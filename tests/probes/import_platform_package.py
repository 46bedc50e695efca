"""Run by tests/test_platform_standin.py under `pytest` and `python -m pytest` (not collected by default)."""

import json
import os
import pickle
import subprocess
import sys

# -I (isolated): neither the working directory nor PYTHONPATH is on the path, so `import platform` is
# the standard module here, whatever directory the probe runs from.
STANDARD = ("import json, platform; print(json.dumps([hasattr(platform, '__path__'), platform.system(),"
            " platform.machine(), platform.release()]))")


def test_platform_package_is_ours_and_answers_like_the_standard_module():
    import platform
    import platform.doctor  # noqa: F401  (the import under test)

    assert hasattr(platform, "__path__"), "the standard module was imported, not our package"
    out = subprocess.run([sys.executable, "-I", "-c", STANDARD], capture_output=True, text=True, check=True)
    is_package, *standard = json.loads(out.stdout)
    assert not is_package, "the isolated interpreter did not reach the standard module"
    ours = [platform.system(), platform.machine(), platform.release()]
    assert ours == standard, f"ours {ours}, the standard module {standard}"
    kernel = os.uname()  # the kernel's own answer, without any platform module
    assert ours == [kernel.sysname, kernel.machine, kernel.release]
    assert pickle.loads(pickle.dumps(platform.uname())) == platform.uname()
