"""Differential: the case table against codex's own `apply_patch` (the 0.169 and 0.171 CLI
binaries, run as `codex --codex-run-as-apply-patch PATCH` in a directory holding the case's
files). Where the table says codex ends the same way, codex prints the same summary and
leaves the same files, or refuses too; where the table gives a reason for a deliberate
difference, codex's outcome really differs (so the reason stays true)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from apply_patch_cases import CASES, Case
from support import servers
from support.codex_harness import codex_binary
from test_apply_patch import expected_summary, make_tree, normal, read_tree

pytestmark = pytest.mark.reference

VERSIONS = ("0.169", "0.171")


def run_codex(version: str, work: Path, patch: str) -> subprocess.CompletedProcess[str]:
    binary = codex_binary(version)
    if not binary.exists():
        if servers.skip_reference():
            pytest.skip("reference binaries skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(servers.missing_reference_message(), pytrace=False)
    return subprocess.run([str(binary), "--codex-run-as-apply-patch", patch], cwd=work,
                          capture_output=True, text=True, timeout=20, check=False)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_codex_agrees_with_the_table(case: Case, version: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    make_tree(work, case.before)
    done = run_codex(version, work, case.patch.replace("{cwd}", str(work)))
    ours = (True, expected_summary(case, work), normal(case.after)) if case.after is not None \
        else (False, "", normal(case.before))
    theirs = (done.returncode == 0, done.stdout if done.returncode == 0 else "",
              read_tree(work))
    why = f"codex {version}: rc={done.returncode}\n{done.stdout}{done.stderr}"
    if case.codex == "same":
        assert theirs == ours, why
    else:
        assert theirs != ours, f"the table says codex differs ({case.codex}), but: {why}"
