"""Make ``import platform.<module>`` reach our package under plain ``pytest`` too.

The ``pytest`` console script imports the standard-library ``platform`` before collecting, so the
repository's package would otherwise be hidden behind it (``python -m pytest`` from the root does not
need this). Our package re-exports the standard module's whole API, so swapping it in is safe for every
module that already holds the standard one.
"""

import importlib
import pathlib
import sys

_ROOT = str(pathlib.Path(__file__).resolve().parent)
if sys.path[0] != _ROOT:
    sys.path.insert(0, _ROOT)
if not hasattr(sys.modules.get("platform"), "__path__"):
    sys.modules.pop("platform", None)
    importlib.import_module("platform")
