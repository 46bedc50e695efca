"""The layout's import rules (DESIGN.md "Layout", "The driver/worker rule"), read from the source with
``ast``: every ``import`` and ``from ... import`` of every file, also those inside functions, relative
imports resolved against the file's package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Package → the packages its code must never import, as the design says them:
# - code that runs inside a trial (models/, trials/, spectra/) never imports `platform` (a Ray worker has
#   already imported the standard module; which one it would get depends on its path), and search
#   spaces stay importable anywhere, so neither do they;
# - models/ holds the networks and their registry, nothing more: no trial code;
# - spectra/ (data, masks, metrics) sits below both: no networks, no trials.
FORBIDDEN = {
    "models": {"platform", "trials"},
    "trials": {"platform"},
    "spectra": {"platform", "models", "trials"},
    "search_spaces": {"platform"},
}


def module_name(root: Path, path: Path) -> str:
    """``models/registry.py`` → ``models.registry``; a package's ``__init__.py`` → the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module))
                continue
            base = package.split(".")
            base = base[:len(base) - (node.level - 1)]  # each extra dot climbs one package
            if node.module:
                found.append((node.lineno, ".".join([*base, node.module])))
            else:  # `from . import x`: x may be a module of that package
                found += [(node.lineno, ".".join([*base, alias.name])) for alias in node.names]
    return sorted(found)


def layout_violations(root: Path, rules: dict[str, set[str]] = FORBIDDEN) -> list[str]:
    """One line per forbidden import under ``root``: ``file:line: imports X (P must not import Q)``."""
    violations = []
    for package, forbidden in sorted(rules.items()):
        for path in sorted((root / package).rglob("*.py")):
            for line, imported in imported_modules(root, path):
                top = imported.split(".")[0]
                if top in forbidden:
                    violations.append(f"{path.relative_to(root)}:{line}: imports {imported} "
                                      f"({package} must not import {top})")
    return violations


def test_every_ruled_package_is_there_with_code_to_check():
    # A renamed package would otherwise pass the rule below by having no files.
    for package in FORBIDDEN:
        assert (ROOT / package / "__init__.py").is_file(), package
        assert len(list((ROOT / package).rglob("*.py"))) > 1, package


def test_no_package_imports_what_the_design_forbids():
    violations = layout_violations(ROOT)
    assert not violations, "imports the layout forbids:\n" + "\n".join(violations)


def test_the_checker_finds_violations_however_they_are_written(tmp_path):
    files = {
        "models/__init__.py": "",
        "models/registry.py": "import torch\nfrom models import unet\n",  # allowed
        "models/unet.py": "def build():\n    from trials.config import Fields\n    return Fields\n",
        "models/sub/__init__.py": "from .. import registry\nfrom ..registry import x\n",  # allowed
        "trials/__init__.py": "",
        "trials/hed.py": "import os, platform.search as search\n",
        "spectra/__init__.py": "",
        "spectra/masks.py": "from models import registry\nimport numpy\n",
        "search_spaces/__init__.py": "",
        "search_spaces/deep/__init__.py": "",
        "search_spaces/deep/study.py": "import json\n\n\ndef show():\n    import platform\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    assert layout_violations(tmp_path) == [
        "models/unet.py:2: imports trials.config (models must not import trials)",
        "search_spaces/deep/study.py:5: imports platform (search_spaces must not import platform)",
        "spectra/masks.py:1: imports models (spectra must not import models)",
        "trials/hed.py:1: imports platform.search (trials must not import platform)",
    ]


def test_relative_imports_resolve_against_the_files_package(tmp_path):
    (tmp_path / "models" / "sub").mkdir(parents=True)
    init, module = tmp_path / "models" / "__init__.py", tmp_path / "models" / "sub" / "blocks.py"
    init.write_text("from .registry import create_model\nfrom . import unet\n")
    module.write_text("from .layers import conv\nfrom ..registry import create_model\n")
    assert imported_modules(tmp_path, init) == [(1, "models.registry"), (2, "models.unet")]
    assert imported_modules(tmp_path, module) == [(1, "models.sub.layers"), (2, "models.registry")]
