"""`trio-exec serve --listen stdio`, differentially against codex 0.171's own
`codex exec-server --listen stdio`, driven as the codex client drives an exec-server child:
one compact JSON message per line (`\\r\\n` and blank lines tolerated, `Content-Length`
framing refused with -32600), stdout carrying only protocol lines, and at the end stdin
closed and the process group SIGTERMed at the same moment: the server kills the processes it
started and exits 0. Then our own client over `--via`.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support import servers

from trio_exec.client import open_client_via

STDIO = "trio-exec"
REFERENCE = "reference-0.171"
TRIO_EXEC_STDIO = [sys.executable, "-m", "trio_exec", "serve", "--listen", "stdio"]
#: The codex client's bound on the `initialize` answer.
INITIALIZE_LIMIT = 10.0
#: How long a server may take to exit after its stdin closed.
EXIT_LIMIT = 5.0


def command(kind: str) -> list[str]:
    if kind == STDIO:
        return TRIO_EXEC_STDIO
    binary = servers.reference_binary_of(servers.REFERENCE_0171)
    if not binary.exists():
        if servers.skip_reference():
            pytest.skip("reference skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(f"missing {binary}", pytrace=False)
    return [str(binary), "exec-server", "--listen", "stdio"]


class Child:
    """A stdio exec-server child, started in its own process group as codex starts one."""

    def __init__(self, argv: list[str], home: Path, stderr: Path) -> None:
        self.stderr_path = stderr
        with stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, start_new_session=True,
                env={**os.environ, "CODEX_HOME": str(home)},
            )
        self._selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def line(self, within: float = 10.0) -> bytes:
        """The next stdout line (with its `\\n`); fails after `within` seconds."""
        deadline = time.monotonic() + within
        assert self.proc.stdout is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0 and self._selector.select(left), (
                f"no line within {within}s; stderr:\n{self.stderr_path.read_text()[-2000:]}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, f"stdout ended; stderr:\n{self.stderr_path.read_text()[-2000:]}"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def message(self) -> Any:
        raw = self.line()
        message = json.loads(raw)  # one whole JSON value on one line
        assert raw.endswith(b"\n") and not raw.endswith(b"\r\n")
        return message

    def close(self) -> None:
        with_kill = self.proc.poll() is None
        if with_kill:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._selector.close()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture(params=[STDIO, REFERENCE])
def child(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Child]:
    home = tmp_path / "home"
    home.mkdir()
    started = Child(command(request.param), home, tmp_path / "stderr.txt")
    try:
        yield started
    finally:
        started.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_framing_and_lifecycle_over_stdio(child: Child, tmp_path: Path) -> None:
    started = time.monotonic()
    child.send(b'\n\r\n{"id":1,"method":"initialize","params":{"clientName":"probe"}}\r\n')
    reply = child.message()
    assert time.monotonic() - started < INITIALIZE_LIMIT
    assert reply["id"] == 1 and reply["result"]["sessionId"]
    child.send(b'{"method":"initialized","params":{}}\n')

    child.send(b"Content-Length: 64\r\n")
    refused = child.message()
    assert refused["error"]["code"] == -32600, refused
    child.send(b"\r\n")  # the header block's blank line: tolerated, unanswered

    pidfile = tmp_path / "pid"
    start = {
        "id": 2, "method": "process/start", "params": {
            "processId": "p1", "argv": ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 600"],
            "cwd": "file://" + str(tmp_path), "env": {"PATH": os.environ["PATH"]},
            "tty": False, "arg0": None, "pipeStdin": False, "sandbox": None,
            "envPolicy": {"inherit": "all", "ignoreDefaultExcludes": True, "exclude": [],
                          "set": {}, "includeOnly": []},
        },
    }
    child.send(json.dumps(start).encode() + b"\n")
    assert child.message()["result"]["processId"] == "p1"
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "no pid file")
    sleeper = int(pidfile.read_text())
    assert alive(sleeper)

    # the codex client's end: stdin closed and the group SIGTERMed at the same moment
    assert child.proc.stdin is not None
    closed_at = time.monotonic()
    child.proc.stdin.close()
    os.killpg(child.proc.pid, signal.SIGTERM)
    code = child.proc.wait(timeout=EXIT_LIMIT)
    took = time.monotonic() - closed_at
    assert code == 0, child.stderr_path.read_text()[-2000:]
    wait_for(lambda: not alive(sleeper), 2.0, "the started process outlived the server")
    print(f"exit after stdin EOF + SIGTERM: {took * 1000:.0f} ms")
    assert child.proc.stdout is not None
    rest = child._buffer + child.proc.stdout.read()
    for line in rest.splitlines():  # stdout carries only protocol lines
        json.loads(line)


async def test_our_client_over_via(tmp_path: Path) -> None:
    async with open_client_via(TRIO_EXEC_STDIO) as client:
        process = await client.process_start(
            ["sh", "-c", "echo over-stdio; echo $PPID"], cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"}
        )
        output = b""
        async for chunk in process.output():
            output += chunk.data
        assert await process.wait() == 0
    text = output.decode()
    assert text.startswith("over-stdio\n")
    server_pid = int(text.split()[1])
    # the client closed the server's stdin: the server is gone
    await trio.to_thread.run_sync(
        wait_for, lambda: not alive(server_pid), EXIT_LIMIT, "the stdio server outlived the client"
    )


def test_exec_cli_via(tmp_path: Path) -> None:
    via = " ".join(TRIO_EXEC_STDIO)
    done = subprocess.run(
        [sys.executable, "-m", "trio_exec", "exec", "--via", via, "--cwd", str(tmp_path), "--",
         "sh", "-c", "echo via-out; echo via-err >&2; exit 7"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 7, done.stderr
    assert done.stdout == "via-out\n"
    assert "via-err\n" in done.stderr


def test_exec_cli_via_a_command_that_does_not_exist(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trio_exec", "exec", "--via", str(tmp_path / "missing"), "--",
         "true"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 255
    assert "No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
