"""The import structure of `trio_exec/`, as pyproject.toml's import-linter contracts state it:
no circle anywhere (between folders, or between the modules of one folder); services
(process, fs, session, sandbox) never import rpc/, ws/, the consumer side or the daemon shell;
proto/ imports nothing else of trio_exec and is layered inside; ws/ knows neither JSON-RPC nor
the services; rpc/ never imports the shell; the consumer side never imports the daemon's layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter in a child process (in-process, it leaves the logging of later tests
    without records), against the package found first on `root`."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=root,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def test_every_layer_contract_is_kept() -> None:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 8
    run = lint_imports(PYPROJECT.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(contracts)} kept, 0 broken" in run.stdout, run.stdout


def test_a_service_importing_rpc_breaks_a_contract(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package where `process/` imports `rpc/` is caught."""
    package = Path(__file__).resolve().parent.parent / "trio_exec"
    copy = tmp_path / "trio_exec"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "process" / "table.py"
    bad.write_text(bad.read_text() + "\nfrom trio_exec.rpc import dispatch\n")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.read_text())
    run = lint_imports(tmp_path)
    assert run.returncode != 0, run.stdout
    assert ("services (process, fs, session, sandbox) never import a layer above them BROKEN"
            in run.stdout), run.stdout
