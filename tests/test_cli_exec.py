"""`trio-exec exec` as a subprocess against a real daemon (in the test's event loop, on
127.0.0.1:0): output, exit statuses, stdin, environment, PTY, usage errors, signals, a
daemon-side connection drop in the middle of a command (through a TCP proxy the test cuts),
and the daemon shutting down under a running command."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import trio
from support.daemon import tcp_daemon
from support.gates import Gates

TIMEOUT = 20


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "trio_exec", "exec", *args]


async def run_cli(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None,
                  ) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        cli(*args), stdin=stdin, capture_stdout=True, capture_stderr=True, check=False,
        env=env,
    )


@attrs.define(eq=False)
class CuttableProxy:
    """A TCP proxy to the daemon; `cut()` drops every connection through it at once, the way
    a network failure between client and daemon does."""

    target_port: int
    port: int = 0
    _pairs: list[tuple[trio.SocketStream, trio.SocketStream]] = attrs.field(factory=list)
    cuts: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        self._pairs.append((client, upstream))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, upstream, nursery.cancel_scope)
                nursery.start_soon(self._pump, upstream, client, nursery.cancel_scope)
        finally:
            with trio.CancelScope(shield=True):
                await client.aclose()
                await upstream.aclose()

    @staticmethod
    async def _pump(source: trio.SocketStream, sink: trio.SocketStream,
                    scope: trio.CancelScope) -> None:
        try:
            while data := await source.receive_some(65536):
                await sink.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    async def cut(self) -> None:
        pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            await client.aclose()
            await upstream.aclose()
        self.cuts += 1


@asynccontextmanager
async def daemon_behind_proxy() -> AsyncIterator[tuple[str, CuttableProxy]]:
    async with tcp_daemon() as served, trio.open_nursery() as nursery:
        proxy = CuttableProxy(served.port)
        await nursery.start(proxy.serve)
        yield f"ws://127.0.0.1:{proxy.port}", proxy
        nursery.cancel_scope.cancel()


async def test_output_streams_and_exit_code() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")


async def test_signal_death_is_128_plus_n() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--", "sh", "-c", "kill -USR1 $$")
    assert done.returncode == 128 + signal.SIGUSR1.value


async def test_stdin_is_forwarded_and_closed() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--", "cat", stdin=b"through the daemon")
    assert (done.returncode, done.stdout) == (0, b"through the daemon")


async def test_environment_and_cwd(tmp_path: Path) -> None:
    env = {**os.environ, "FROM_CALLER": "inherited"}
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--cwd", str(tmp_path), "--env", "EXTRA=given",
                                 "--", "sh", "-c", 'echo "$FROM_CALLER $EXTRA"; pwd', env=env)
            cleared = await run_cli("--url", served.url, "--clear-env", "--env", "ONLY=1", "--",
                                    "/usr/bin/env", env=env)
    assert done.stdout == f"inherited given\n{tmp_path}\n".encode()
    assert cleared.stdout == b"ONLY=1\n"


async def test_url_defaults_to_the_environment_variable() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--", "echo", "via env",
                                 env={**os.environ, "TRIO_EXEC_SERVER_URL": served.url})
    assert (done.returncode, done.stdout) == (0, b"via env\n")


def without_server_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("TRIO_EXEC_SERVER_URL", "CODEX_EXEC_SERVER_URL")}


async def test_url_falls_back_to_codex_exec_server_url_like_the_library() -> None:
    """One rule with the environment manager: TRIO_EXEC_SERVER_URL, else (unset or empty)
    CODEX_EXEC_SERVER_URL; `none` disables, and says so."""
    base = without_server_variables()
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            codex = await run_cli("--", "echo", "codex", env={**base, "CODEX_EXEC_SERVER_URL": served.url})
            empty = await run_cli("--", "echo", "empty", env={
                **base, "TRIO_EXEC_SERVER_URL": "", "CODEX_EXEC_SERVER_URL": served.url})
            first = await run_cli("--", "echo", "first", env={
                **base, "TRIO_EXEC_SERVER_URL": served.url, "CODEX_EXEC_SERVER_URL": "ws://127.0.0.1:1"})
        disabled = await run_cli("--", "true", env={**base, "CODEX_EXEC_SERVER_URL": "none"})
        bad = await run_cli("--", "true", env={**base, "CODEX_EXEC_SERVER_URL": "http://x"})
    assert (codex.returncode, codex.stdout) == (0, b"codex\n")
    assert (empty.returncode, empty.stdout) == (0, b"empty\n")
    assert (first.returncode, first.stdout) == (0, b"first\n")
    assert disabled.returncode == 2
    assert disabled.stderr == (b"trio-exec exec: no server: CODEX_EXEC_SERVER_URL=none disables "
                               b"remote execution; pass --url\n")
    assert bad.returncode == 2 and b"CODEX_EXEC_SERVER_URL='http://x' is not understood" in bad.stderr


async def test_tty_mode() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--tty", "--", "sh", "-c", "tty; stty size; exit 2")
    assert done.returncode == 2
    assert done.stdout.startswith(b"/dev/pts/")
    assert done.stdout.endswith(b"24 80\r\n")


async def test_usage_and_start_errors() -> None:
    env = without_server_variables()
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            no_command = await run_cli("--url", served.url)
            bad_env = await run_cli("--url", served.url, "--env", "NOEQUALS", "--", "true")
            missing = await run_cli("--url", served.url, "--", "/no/such/program")
        no_url = await run_cli("--", "true", env=env)
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        await listener.aclose()
        refused = await run_cli("--url", f"ws://127.0.0.1:{port}", "--", "true")
    assert no_command.returncode == 2 and b"no command given" in no_command.stderr
    assert bad_env.returncode == 2 and b"--env expects K=V" in bad_env.stderr
    assert no_url.returncode == 2 and b"TRIO_EXEC_SERVER_URL" in no_url.stderr
    assert missing.returncode == 127
    assert missing.stderr == (b"trio-exec exec: cannot start /no/such/program: "
                              b"No such file or directory (os error 2)\n")
    assert refused.returncode == 255 and b"refused" in refused.stderr


async def test_tty_end_of_piped_input_reaches_the_command_as_eof() -> None:
    """`echo hi | trio-exec exec --tty -- cat` ends: the end of our stdin is the terminal's ^D
    (twice after a partial line). The PTY echoes the input before cat repeats it."""
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            line = await run_cli("--url", served.url, "--tty", "--", "cat", stdin=b"hi\n")
            partial = await run_cli("--url", served.url, "--tty", "--", "cat", stdin=b"no newline")
            empty = await run_cli("--url", served.url, "--tty", "--", "cat", stdin=b"")
            shell = await run_cli("--url", served.url, "--tty", "--", "sh", "-c",
                                  "while read -r line; do echo \"got $line\"; done; echo end",
                                  stdin=b"a\nb\n")
    assert (line.returncode, line.stdout) == (0, b"hi\r\nhi\r\n")
    assert (partial.returncode, partial.stdout) == (0, b"no newlineno newline")
    assert (empty.returncode, empty.stdout) == (0, b"")
    assert shell.returncode == 0
    assert shell.stdout == b"a\r\nb\r\ngot a\r\ngot b\r\nend\r\n"


async def test_a_missing_working_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    a_file = tmp_path / "file"
    a_file.write_text("")
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            no_dir = await run_cli("--url", served.url, "--cwd", str(missing), "--", "pwd")
            not_dir = await run_cli("--url", served.url, "--cwd", str(a_file), "--", "pwd")
            no_program = await run_cli("--url", served.url, "--cwd", str(tmp_path), "--", "/no/such")
    assert no_dir.returncode == 127
    assert no_dir.stderr == (f"trio-exec exec: cannot start pwd: working directory {missing} "
                             "does not exist on the server\n").encode()
    assert not_dir.returncode == 127
    assert not_dir.stderr == (f"trio-exec exec: cannot start pwd: working directory {a_file} "
                              "is not a directory on the server\n").encode()
    assert no_program.returncode == 127
    assert no_program.stderr == (b"trio-exec exec: cannot start /no/such: "
                                 b"No such file or directory (os error 2)\n")


async def test_help_states_the_exit_status_rules() -> None:
    done = await run_cli("--help")
    assert done.returncode == 0
    text = b" ".join(done.stdout.split())
    assert b"exit status: N the command exited with code N" in text
    assert b"128+n signal n ended the command" in text
    assert b"127 the command could not be started" in text
    assert b"255 trio-exec failed" in text


async def read_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes:
    """The first line in `buffer` (reading more as needed), removed from it."""
    await read_until(stream, buffer, b"\n")
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line + b"\n"


async def test_a_daemon_shutdown_is_told_at_once() -> None:
    """The daemon shuts down under a running command: exec says so on stderr at once, with
    the window it keeps reconnecting for (60 s here; the test ends it long before)."""
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            daemon, port = served.daemon, served.port
            process = await trio.lowlevel.open_process(
                cli("--url", f"ws://127.0.0.1:{port}", "--reconnect-window", "60", "--",
                    "sh", "-c", "echo ready; exec sleep 1000"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None
            try:
                await read_until(process.stdout, bytearray(), b"ready\n")
                daemon.stop()
                told = await read_line(process.stderr, bytearray())
                assert process.poll() is None  # still reconnecting
            finally:
                process.kill()
                await process.wait()
                await process.stdout.aclose()
                await process.stderr.aclose()
    assert told == ("trio-exec exec: server shutting down (Close 1001); reconnecting for up "
                    "to 60 s\u2026\n").encode()


async def test_after_a_daemon_shutdown_the_last_word_names_the_cause() -> None:
    """A short window (0.5 s): told at once, then exit 255 with the cause of the drop (the
    shutdown) and of the last failed attempt (refused), not a bare "not recovered"."""
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            daemon, port = served.daemon, served.port
            process = await trio.lowlevel.open_process(
                cli("--url", f"ws://127.0.0.1:{port}", "--reconnect-window", "0.5", "--",
                    "sh", "-c", "echo ready; exec sleep 1000"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None
            out = bytearray()
            await read_until(process.stdout, out, b"ready\n")
            daemon.stop()
            errors = bytearray()
            while data := await process.stderr.receive_some(65536):
                errors += data
            status = await process.wait()
            await process.stdout.aclose()
            await process.stderr.aclose()
    told, last = bytes(errors).decode().splitlines()
    assert status == 255
    assert told == "trio-exec exec: server shutting down (Close 1001); reconnecting for up to 0.5 s\u2026"
    assert last == (
        "trio-exec exec: process 1 lost: connection to the exec-server lost: server shutting "
        "down (Close 1001); not recovered within 0.5s (last attempt: Error connecting to "
        f"('127.0.0.1', {port}): Connection refused)"
    )


async def test_large_output_is_exact() -> None:
    expected = b"".join(b"%d\n" % i for i in range(1, 300001))
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            done = await run_cli("--url", served.url, "--", "seq", "1", "300000")
    assert done.returncode == 0
    assert hashlib.sha256(done.stdout).hexdigest() == hashlib.sha256(expected).hexdigest()


async def read_until(stream: trio.abc.ReceiveStream, buffer: bytearray, wanted: bytes) -> None:
    while wanted not in buffer:
        data = await stream.receive_some(65536)
        assert data, bytes(buffer)
        buffer += data


async def test_sigterm_is_forwarded_to_the_command() -> None:
    script = "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            process = await trio.lowlevel.open_process(
                cli("--url", served.url, "--", "sh", "-c", script),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            )
            assert process.stdout is not None
            out = bytearray()
            await read_until(process.stdout, out, b"ready\n")
            process.send_signal(signal.SIGTERM)
            await read_until(process.stdout, out, b"got-term\n")
            assert await process.wait() == 7
            await process.stdout.aclose()


async def test_survives_a_daemon_side_drop_mid_command(gates: Gates) -> None:
    """The command prints 2000 lines, the connection is cut, it prints 2000 more while the
    CLI reconnects through the proxy and resumes: every line arrives once, in order."""
    first = "i=0; while [ $i -lt 2000 ]; do echo a$i; i=$((i+1)); done"
    second = "i=0; while [ $i -lt 2000 ]; do echo b$i; i=$((i+1)); done"
    script = f"{first}; {gates.wait('cut')}; {second}; exit 9"
    expected = b"".join(b"a%d\n" % i for i in range(2000)) + b"".join(
        b"b%d\n" % i for i in range(2000))
    with trio.fail_after(TIMEOUT):
        async with daemon_behind_proxy() as (url, proxy):
            process = await trio.lowlevel.open_process(
                cli("--url", url, "--", "sh", "-c", script),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
            assert process.stdout is not None and process.stderr is not None
            out = bytearray()
            await read_until(process.stdout, out, b"a1999\n")
            await proxy.cut()
            gates.open("cut")
            while data := await process.stdout.receive_some(65536):
                out += data
            assert await process.wait() == 9
            errors = await process.stderr.receive_some(65536)
            await process.stdout.aclose()
            await process.stderr.aclose()
    assert proxy.cuts == 1
    assert bytes(out) == expected
    assert errors == b""
