"""The import structure of `trio_exec/proto/`: no circle, and the layers of pyproject.toml's
import-linter contracts (serde texts and types at the bottom, the message modules above them,
the one converter above the messages, codec and method table on top)."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_proto_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code = lint_imports(config_filename=str(PYPROJECT), no_cache=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "2 kept, 0 broken" in report, report
