"""Stand-in for the standard-library ``platform`` module, plus the driver-side package.

Our driver package is named ``platform`` (the users asked for that name). Whenever the repository root
comes first on ``sys.path`` (``python -m platform.search``, ``python -m pytest``) it shadows the
standard-library module that torch, pandas, Ray, MLflow, ``uuid`` and others call
(``platform.system()``, ``platform.machine()``, ...). So this file loads the real ``platform.py`` from
the standard-library directory and re-exports its whole API. That is this file's only job: keep it so.

The standard module is loaded under its own name ``platform`` (but registered in ``sys.modules`` as
``_stdlib_platform``), so its classes such as ``uname_result`` keep ``__module__ == "platform"`` and
still pickle and unpickle against this package.
"""

import importlib.util as _importlib_util
import pathlib as _pathlib
import sys as _sys
import sysconfig as _sysconfig


def _load_standard_platform():
    path = _pathlib.Path(_sysconfig.get_paths()["stdlib"]) / "platform.py"
    spec = _importlib_util.spec_from_file_location("platform", path)
    module = _importlib_util.module_from_spec(spec)
    _sys.modules["_stdlib_platform"] = module
    spec.loader.exec_module(module)
    return module


def _refuse_shadowing_submodules(standard_module) -> None:
    """A submodule named like a standard function (``version``, ``system``, ...) would replace that
    function in this namespace once imported, breaking every library that calls it."""
    here = _pathlib.Path(__file__).parent
    names = {p.stem for p in here.glob("*.py")} | {p.name for p in here.iterdir() if p.is_dir()}
    clashes = sorted(n for n in names if not n.startswith("_") and hasattr(standard_module, n))
    if clashes:
        raise ImportError(
            f"platform/ submodules {clashes} shadow functions of the standard-library platform "
            "module; rename them"
        )


_standard = _load_standard_platform()
_refuse_shadowing_submodules(_standard)
globals().update(
    {name: value for name, value in vars(_standard).items() if not name.startswith("__")}
)
__all__ = [name for name in vars(_standard) if not name.startswith("_")]
__doc__ = (__doc__ or "") + "\n\n" + (_standard.__doc__ or "")
