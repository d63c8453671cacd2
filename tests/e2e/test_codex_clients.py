"""A user's real codex client works through trio-exec.

``codex exec`` 0.120.0, 0.169.0 and 0.171.0 (the npm builds; 0.171 speaks the 0.169 dialect),
with ``CODEX_EXEC_SERVER_URL`` pointing at one trio-exec daemon (through the logging proxy of
``support/codex_harness.py``) and a scripted fake model, run a shell command and edit files (one
client at a time and all at once), drive a PTY command through ``write_stdin``, and (0.169,
0.171) survive a dropped connection mid-command, also when the command ends while no client is
attached. Each test checks the effect three ways: what codex reported to the model, what is on
disk, and the exec-server frames that carried it (``process/start`` for the command,
``fs/writeFile`` for the edit; the command prints its ``$PPID``, which must be the daemon's pid).

Sandbox mode: every client runs with ``-s danger-full-access``, except the 0.169-dialect tests
of its sandboxed modes: codex's default mode for ``codex exec`` is ``read-only``, and in it (and
in ``workspace-write``) the 0.169 and 0.171 clients send a filesystem-restricting ``sandbox``
context on ``process/start``, which trio-exec enforces (Landlock, seccomp, read-only binds;
``sandbox/confine.py``), answering ``sandboxType: "linuxSeccomp"`` as the reference does. The
0.120 client sends no sandbox member; in a sandboxed mode it wraps the command in its *own*
binary path (``<client codex> --sandbox-policy … -- bash -lc …``), which only works when client
and daemon share a filesystem, so it also runs with full access here.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import trio
from support.codex_harness import (
    CodexRun,
    Frame,
    Say,
    apply_patch,
    run_codex_exec,
    shell,
    write_stdin,
)
from support.gates import Gates
from support.outside import outside_directory
from support.servers import ServerHandle

pytestmark = pytest.mark.reference

#: Bound of one ``codex exec`` run (a run takes 1-3 s here).
RUN_LIMIT = 40.0
FULL_ACCESS = ("-s", "danger-full-access")
#: The clients of the 0.169 dialect (0.171 speaks it too), which reconnect and resume.
NEW_CLIENTS = ["0.169", "0.171"]

PATCH = """\
*** Begin Patch
*** Update File: notes.txt
@@
 alpha
-old line
+new line
 omega
*** Add File: sub/added.txt
+added through fs/writeFile
*** End Patch
"""
COMMAND = "echo made-by-codex > created.txt; echo ppid=$PPID; printf 'out-%s\\n' 1 2 3"


def wire_path(value: str) -> str:
    """A path member as sent by either dialect (0.120 plain, 0.169 ``file://`` URI)."""
    return unquote(urlsplit(value).path) if value.startswith("file:") else value


def workspace(tmp_path: Path) -> Path:
    work = (tmp_path / "work").resolve()
    work.mkdir()
    (work / "notes.txt").write_text("alpha\nold line\nomega\n")
    return work


async def run(daemon: ServerHandle, version: str, script: list[Any], cwd: Path,
              **kwargs: Any) -> CodexRun:
    kwargs.setdefault("extra_args", FULL_ACCESS)
    with trio.fail_after(RUN_LIMIT + 10):
        result = await run_codex_exec(daemon.url, script, codex_version=version, cwd=cwd,
                                      base_dir=cwd.parent, sandbox_mode=None,
                                      time_limit=RUN_LIMIT, **kwargs)
    assert daemon.alive(), f"daemon died\n{daemon.stderr_text()}"
    return result


def report(result: CodexRun, daemon: ServerHandle) -> str:
    return f"{result.report()}\n--- daemon stderr\n{daemon.stderr_text()[-3000:]}"


def check_command_and_edit(result: CodexRun, daemon: ServerHandle, work: Path) -> None:
    """The effects of ``[shell(COMMAND), apply_patch(PATCH), Say("done")]``."""
    why = report(result, daemon)
    assert result.returncode == 0, why
    assert result.final_message == "done", why
    command_out, patch_out = result.tool_output_texts()

    # the command ran under the daemon: output to the model, file on disk, frames on the wire
    assert f"ppid={daemon.pid}\n" in command_out, why
    assert "out-1\nout-2\nout-3\n" in command_out, why
    assert "Process exited with code 0" in command_out, why
    assert (work / "created.txt").read_text() == "made-by-codex\n"
    starts = result.requests("process/start")
    assert len(starts) == 1, why
    assert starts[0]["params"]["argv"][-1] == COMMAND, why
    assert wire_path(starts[0]["params"]["cwd"]) == str(work), why
    assert "result" in result.response_to(starts[0]), why
    process_id = starts[0]["params"]["processId"]
    output = "".join(f.output_text() for f in result.wire("s>c")
                     if f.method == "process/output" and f.params["processId"] == process_id)
    assert "out-1\nout-2\nout-3\n" in output, why

    # the edit went through fs/* on the daemon (no process is started for apply_patch)
    assert "Success. Updated the following files" in patch_out, why
    assert (work / "notes.txt").read_text() == "alpha\nnew line\nomega\n"
    assert (work / "sub" / "added.txt").read_text() == "added through fs/writeFile\n"
    writes = {wire_path(w["params"]["path"]): w for w in result.requests("fs/writeFile")}
    assert set(writes) == {str(work / "notes.txt"), str(work / "sub" / "added.txt")}, why
    for request in writes.values():
        assert result.response_to(request).get("result") == {}, why
    reads = [wire_path(r["params"]["path"]) for r in result.requests("fs/readFile")]
    assert str(work / "notes.txt") in reads, why


async def test_codex_0120_runs_command_and_edits_file(daemon: ServerHandle,
                                                      tmp_path: Path) -> None:
    work = workspace(tmp_path)
    result = await run(daemon, "0.120", [shell(COMMAND), apply_patch(PATCH), Say("done")], work)
    check_command_and_edit(result, daemon, work)
    # the 0.120 dialect on the wire: plain paths, the 6-member process/start, no sandbox
    start = result.requests("process/start")[0]["params"]
    assert start["cwd"] == str(work)
    assert set(start) == {"processId", "argv", "cwd", "env", "tty", "arg0"}
    assert result.requests("process/read"), "the 0.120 client reads after every wake-up"
    assert result.connections() == [1]


@pytest.mark.parametrize("version", NEW_CLIENTS)
async def test_codex_0169_dialect_runs_command_and_edits_file(daemon: ServerHandle,
                                                              tmp_path: Path, version: str) -> None:
    work = workspace(tmp_path)
    result = await run(daemon, version, [shell(COMMAND), apply_patch(PATCH), Say("done")], work)
    check_command_and_edit(result, daemon, work)
    start_request = result.requests("process/start")[0]
    start = start_request["params"]
    assert start["cwd"].startswith("file:///")
    assert start["sandbox"] is None and "envPolicy" in start
    assert result.response_to(start_request)["result"]["sandboxType"] == "none"
    assert result.requests("fs/watchMissing") and result.requests("environmentConfig/read")
    assert result.connections() == [1]


async def test_both_clients_at_once_on_one_daemon(daemon: ServerHandle, tmp_path: Path) -> None:
    works: dict[str, Path] = {}
    for version in ("0.120", *NEW_CLIENTS):
        (tmp_path / version).mkdir()
        works[version] = workspace(tmp_path / version)
    results: dict[str, CodexRun] = {}

    async def one(version: str) -> None:
        results[version] = await run(
            daemon, version, [shell(COMMAND), apply_patch(PATCH), Say("done")], works[version])

    async with trio.open_nursery() as nursery:
        for version in works:
            nursery.start_soon(one, version)
    for version, result in results.items():
        check_command_and_edit(result, daemon, works[version])


@pytest.mark.parametrize("version", ["0.120", *NEW_CLIENTS])
async def test_codex_tty_stdin_and_terminate_at_turn_end(daemon: ServerHandle, tmp_path: Path,
                                                         version: str) -> None:
    """A PTY command fed through ``write_stdin`` (``process/write``), then a command still
    running when the turn ends, which codex stops with ``process/terminate``."""
    work = workspace(tmp_path)
    script = [shell("read x; echo got:$x", tty=True, yield_time_ms=500),
              write_stdin(None, "abc\n", yield_time_ms=2000),
              shell("sleep 30", yield_time_ms=300), Say("done")]
    result = await run(daemon, version, script, work)
    why = report(result, daemon)
    assert result.returncode == 0, why
    first, fed, running = result.tool_output_texts()
    assert "Process running with session ID" in first, why
    assert "got:abc\r\n" in fed and "Process exited with code 0" in fed, why
    assert "Process running with session ID" in running, why
    (tty_start, sleep_start) = result.requests("process/start")
    assert tty_start["params"]["tty"] is True, why
    (write,) = result.requests("process/write")
    assert base64.b64decode(write["params"]["chunk"]) == b"abc\n", why
    assert result.response_to(write)["result"] == {"status": "accepted"}, why
    sleep_id = sleep_start["params"]["processId"]
    answers = [result.response_to(t)["result"] for t in result.requests("process/terminate")
               if t["params"]["processId"] == sleep_id]
    assert answers[0] == {"running": True}, why


LINES = 8
#: How long the proxy keeps codex from reconnecting: output produced meanwhile (about three
#: lines) can only reach codex through the resumed session's catch-up read.
RECONNECT_DELAY = 0.8


def _cut_at_line_3(frame: Frame) -> bool:
    return frame.direction == "s>c" and "line-3\n" in frame.output_text()


@pytest.mark.parametrize("version", NEW_CLIENTS)
async def test_codex_resumes_after_a_cut_mid_command(daemon: ServerHandle, tmp_path: Path,
                                                     version: str) -> None:
    """The proxy loses the ``process/output`` frame of ``line-3`` and drops the connection
    while the command is still running, then keeps codex from reconnecting for a while.
    codex reconnects, resumes the session (``initialize{resumeSessionId}``) and catches up
    with ``process/read{afterSeq}``: every line reaches the model exactly once, in order, and
    the command is started once."""
    work = workspace(tmp_path)
    command = f"for i in $(seq 1 {LINES}); do echo line-$i; sleep 0.25; done; echo done > end.txt"
    result = await run(daemon, version,
                       [shell(command, yield_time_ms=20000), Say("done")], work,
                       cut_when=_cut_at_line_3, cut_drops_frame=True,
                       reconnect_delay=RECONNECT_DELAY)
    why = report(result, daemon)
    assert result.returncode == 0, why
    assert "proxy cuts the connection (frame dropped)" in [f.raw for f in result.frames], why
    assert result.connections() == [1, 2], why

    # the command was mid-way at the cut and was started only once
    starts = result.requests("process/start")
    assert len(starts) == 1, why
    process_id = starts[0]["params"]["processId"]
    assert not result.notifications("process/exited", conn=1), why
    seen = [n["params"]["seq"] for n in result.notifications("process/output", conn=1)][:-1]

    # connection 2 resumes the session of connection 1 and catches up with process/read
    caught_up = check_resume(result, why, process_id, seen[-1])
    text = "".join(base64.b64decode(c["chunk"]).decode() for c in caught_up["chunks"])
    assert text.startswith("line-3\nline-4\n"), why    # the lost frame, and output meanwhile

    # the model got each line once, in order, and the exit status
    (out,) = result.tool_output_texts()
    lines = re.findall(r"^line-\d+$", out, re.MULTILINE)
    assert lines == [f"line-{i}" for i in range(1, LINES + 1)], why
    assert "Process exited with code 0" in out, why
    assert (work / "end.txt").read_text() == "done\n"


def check_resume(result: CodexRun, why: str, process_id: str, last_seen: int
                 ) -> dict[str, Any]:
    """Connection 2 resumed connection 1's session and read ``process_id`` after
    ``last_seen``; the read's result."""
    init1 = result.requests("initialize", conn=1)[0]
    session_id = result.response_to(init1, conn=1)["result"]["sessionId"]
    init2 = result.requests("initialize", conn=2)
    assert [i["params"]["resumeSessionId"] for i in init2] == [session_id], why
    assert result.response_to(init2[0], conn=2)["result"]["sessionId"] == session_id, why
    reads = result.requests("process/read", conn=2)
    assert [r["params"] for r in reads][:1] == [{
        "processId": process_id, "afterSeq": last_seen, "maxBytes": None, "waitMs": 0}], why
    return dict(result.response_to(reads[0], conn=2)["result"])


DETACHED_EXIT = 7


@pytest.mark.parametrize("version", NEW_CLIENTS)
async def test_codex_recovers_a_command_that_exited_while_detached(
    daemon: ServerHandle, tmp_path: Path, version: str
) -> None:
    """The proxy drops the connection (losing the frame of ``line-3``) while the command
    waits at a gate; only when codex tries to reconnect is the gate opened, and the proxy
    holds that reconnect until the command has printed ``line-4`` … ``line-8``, exited 7 and
    been reaped (a watcher that holds no output pipe says so through a FIFO; it runs in a session
of its own, since the daemon keeps a leader unreaped while members of its group live:
process/group.py). So the output, the exit and
    the close all happen while no client is attached, and reach codex only through the
    resumed session's ``process/read``, whose ``nextSeq - 1`` must be the close event's seq
    (the 0.169 rule): the model gets every line once, in order, and the exit code."""
    work = workspace(tmp_path)
    gates = Gates(tmp_path)
    reaped = tmp_path / "reaped"
    os.mkfifo(reaped)
    command = (
        "echo line-1; echo line-2; echo line-3; " + gates.wait("go") + "; "
        f"for i in $(seq 4 {LINES}); do echo line-$i; done; "
        "setsid -f sh -c 'while kill -0 \"$1\" 2>/dev/null; do sleep 0.01; done; "
        f"echo reaped > \"$2\"' watcher $$ {reaped} >/dev/null 2>&1; exit {DETACHED_EXIT}")

    async def finish_while_detached() -> None:
        gates.open("go")
        # read-write, so that the open does not wait for the writer and no EOF comes first
        async with trio.lowlevel.FdStream(os.open(reaped, os.O_RDWR)) as fifo:
            with trio.fail_after(20):
                assert await fifo.receive_some() == b"reaped\n"

    result = await run(daemon, version,
                       [shell(command, yield_time_ms=20000), Say("done")], work,
                       cut_when=_cut_at_line_3, cut_drops_frame=True,
                       before_reconnect=finish_while_detached)
    why = report(result, daemon)
    assert result.returncode == 0, why
    assert result.connections() == [1, 2], why
    (start,) = result.requests("process/start")
    process_id = start["params"]["processId"]
    before = [n["params"] for n in result.notifications("process/output", conn=1)][:-1]
    seen_text = "".join(base64.b64decode(p["chunk"]).decode() for p in before)

    # no exit or close ever reached codex as a notification: only through the catch-up read
    assert not result.notifications("process/exited"), why
    assert not result.notifications("process/closed"), why
    caught_up = check_resume(result, why, process_id, before[-1]["seq"] if before else 0)
    assert (caught_up["exited"], caught_up["exitCode"], caught_up["closed"]) == (
        True, DETACHED_EXIT, True), why
    chunk_seqs = [c["seq"] for c in caught_up["chunks"]]
    assert caught_up["nextSeq"] == chunk_seqs[-1] + 3, why      # after the exit and the close
    text = "".join(base64.b64decode(c["chunk"]).decode() for c in caught_up["chunks"])
    assert seen_text + text == "".join(f"line-{i}\n" for i in range(1, LINES + 1)), why

    (out,) = result.tool_output_texts()
    lines = re.findall(r"^line-\d+$", out, re.MULTILINE)
    assert lines == [f"line-{i}" for i in range(1, LINES + 1)], why
    assert f"Process exited with code {DETACHED_EXIT}" in out, why


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside every writable root of codex's sandbox modes (/tmp is one)."""
    with outside_directory("e2e") as path:
        yield path


def sandboxed_start(result: CodexRun, why: str) -> dict[str, Any]:
    """The one process/start, which asked for a sandbox and was confined (not refused)."""
    (start,) = result.requests("process/start")
    assert start["params"]["sandbox"]["permissions"]["type"] == "managed", why
    assert result.response_to(start)["result"]["sandboxType"] == "linuxSeccomp", why
    return dict(start)


@pytest.mark.parametrize("version", NEW_CLIENTS)
async def test_codex_0169_dialect_default_sandbox_mode_runs_confined(
    daemon: ServerHandle, tmp_path: Path, outside: Path, version: str
) -> None:
    """Without a sandbox flag ``codex exec`` 0.169 runs ``read-only`` and sends a sandbox
    context (``/`` readable, nothing writable) on ``process/start``. trio-exec runs the command
    confined, as the reference does: it reads anywhere, every write fails (inside the
    workspace too), and the exit is reported ``sandboxDenied``."""
    work = workspace(tmp_path)
    command = (f"echo ppid=$PPID; cat {outside}/readable; echo in > created.txt;"
               f" echo out > {outside}/created.txt; exit 3")
    result = await run(daemon, version, [shell(command), Say("done")], work, extra_args=())
    why = report(result, daemon)
    assert result.returncode == 0, why
    start = sandboxed_start(result, why)
    assert start["params"]["sandbox"]["permissions"]["file_system"] == {
        "type": "restricted",
        "entries": [{"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"}],
    }, why
    (out,) = result.tool_output_texts()
    assert f"ppid={daemon.pid}\n" in out and "from outside\n" in out, why
    assert "line 1: created.txt: Permission denied\n" in out, why
    assert f"line 1: {outside}/created.txt: Permission denied\n" in out, why
    assert not (work / "created.txt").exists() and not (outside / "created.txt").exists()
    (exited,) = result.notifications("process/exited")
    assert exited["params"]["exitCode"] == 3 and exited["params"]["sandboxDenied"] is True, why


@pytest.mark.parametrize("version", NEW_CLIENTS)
async def test_codex_0169_dialect_workspace_write_runs_confined(
    daemon: ServerHandle, tmp_path: Path, outside: Path, version: str
) -> None:
    """``-s workspace-write``: the workspace (and /tmp) are writable, the rest is not, and the
    workspace's ``.git`` stays read-only."""
    work = workspace(tmp_path)
    (work / ".git").mkdir()
    (work / ".git" / "config").write_text("[core]\n")
    command = (f"echo in > created.txt && cat created.txt; echo out > {outside}/created.txt;"
               " echo hook > .git/hook; echo end")
    result = await run(daemon, version, [shell(command), Say("done")], work,
                       extra_args=("-s", "workspace-write"))
    why = report(result, daemon)
    assert result.returncode == 0, why
    start = sandboxed_start(result, why)
    entries = start["params"]["sandbox"]["permissions"]["file_system"]["entries"]
    assert {"path": {"type": "special", "value": {"kind": "project_roots"}},
            "access": "write"} in entries, why
    (out,) = result.tool_output_texts()
    assert "in\n" in out and "Permission denied" in out and "Read-only file system" in out, why
    assert "Process exited with code 0" in out, why
    assert (work / "created.txt").read_text() == "in\n"
    assert not (outside / "created.txt").exists()
    assert not (work / ".git" / "hook").exists()
