"""The package's metadata: its license, the libraries it declares, the bounds on them."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

import trio_exec

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REQUIREMENTS = {
    Requirement(line).name: Requirement(line) for line in PYPROJECT["project"]["dependencies"]
}
#: Libraries whose private attributes or replaced classes the code depends on: a new release
#: may break it silently, so each one is capped at the newest version tested.
REACHED_INTO = ("trio-websocket", "wsproto", "websockets")


def test_the_license_is_an_spdx_expression_with_its_text_shipped() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text


def _imported_top_level_modules() -> set[str]:
    names = set()
    for path in Path(trio_exec.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"trio_exec"}


def test_every_imported_library_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    imported = {  # names compared in their normal form (PEP 503: `prometheus_client` is `-`)
        re.sub(r"[-_.]+", "-", dist).lower()
        for module in _imported_top_level_modules() for dist in distributions[module]
    }
    assert imported <= set(REQUIREMENTS), imported - set(REQUIREMENTS)


def test_libraries_reached_into_are_capped_and_the_installed_ones_fit() -> None:
    for name in REACHED_INTO:
        assert any(spec.operator == "<" for spec in REQUIREMENTS[name].specifier), name
    for name, requirement in REQUIREMENTS.items():
        installed = importlib.metadata.version(name)
        assert requirement.specifier.contains(installed), (name, installed)


def test_the_version_has_one_source() -> None:
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert importlib.metadata.version("trio-exec") == trio_exec.__version__
