"""The real codex 0.171 client runs its commands and edits through `trio-exec serve --listen
stdio`, started by codex itself from `$CODEX_HOME/environments.toml` — the "stdio over SSH"
recipe of docs/remote.md, with `ssh devbox` replaced by this machine's interpreter (the toml
is otherwise the document's own). Checked: what codex reported to the model, what is on disk,
that the command's parent was the stdio server, and that the server is gone once codex is.
"""

from __future__ import annotations

import re
import sys
import time
import tomllib
from pathlib import Path

import pytest
import trio
from support.codex_harness import Say, apply_patch, run_codex_exec, shell

pytestmark = pytest.mark.reference

DOC = Path(__file__).resolve().parents[2] / "docs" / "remote.md"
RUN_LIMIT = 40.0
PATCH = """\
*** Begin Patch
*** Update File: notes.txt
@@
 alpha
-old line
+new line
 omega
*** End Patch
"""
COMMAND = ("echo made-by-codex > created.txt; echo server-pid=$PPID; "
           "tr '\\0' ' ' < /proc/$PPID/cmdline; echo; printf 'out-%s\\n' 1 2 3")


def recipe_toml() -> str:
    """The environments.toml of the doc's "stdio over SSH" section, run locally."""
    section = DOC.read_text().split("## Recipe: stdio over SSH", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block is not None, "no toml block in the stdio section of docs/remote.md"
    text = block.group(1)
    recipe = tomllib.loads(text)
    [environment] = recipe["environments"]
    assert environment["program"] == "ssh"
    assert environment["args"][-3:] == ["serve", "--listen", "stdio"]
    assert recipe["default"] == environment["id"] and recipe["include_local"] is False
    local = re.sub(r'program = "ssh"', f'program = "{sys.executable}"', text)
    local = re.sub(r"args = \[.*\]", 'args = ["-m", "trio_exec", "serve", "--listen", "stdio"]',
                   local)
    assert tomllib.loads(local)["environments"][0]["id"] == environment["id"]
    return local


async def test_codex_0171_runs_command_and_patch_over_stdio(tmp_path: Path) -> None:
    work = (tmp_path / "work").resolve()
    work.mkdir()
    (work / "notes.txt").write_text("alpha\nold line\nomega\n")
    with trio.fail_after(RUN_LIMIT + 10):
        result = await run_codex_exec(
            "ws://127.0.0.1:9/unused", [shell(COMMAND), apply_patch(PATCH), Say("done")],
            codex_version="0.171", cwd=work, base_dir=tmp_path, sandbox_mode=None,
            extra_args=("-s", "danger-full-access"), use_proxy=False, time_limit=RUN_LIMIT,
            environments_toml=recipe_toml(),
        )
    why = result.report()
    assert result.returncode == 0, why
    assert result.final_message == "done", why
    command_out, patch_out = result.tool_output_texts()
    assert "out-1\nout-2\nout-3\n" in command_out, why
    assert "-m trio_exec serve --listen stdio" in command_out, why
    assert (work / "created.txt").read_text() == "made-by-codex\n"
    assert "Success. Updated the following files" in patch_out, why
    assert (work / "notes.txt").read_text() == "alpha\nnew line\nomega\n"
    match = re.search(r"server-pid=(\d+)", command_out)
    assert match is not None, why
    cmdline = Path(f"/proc/{match.group(1)}/cmdline")
    await trio.to_thread.run_sync(wait_gone, cmdline)  # codex closed its stdin: it is gone


def server_running(cmdline: Path) -> bool:
    try:
        return b"trio_exec" in cmdline.read_bytes()
    except OSError:
        return False


def wait_gone(cmdline: Path, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while server_running(cmdline):
        assert time.monotonic() < deadline, "the stdio server outlived codex"
        time.sleep(0.01)
