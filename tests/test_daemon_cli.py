"""`trio-exec serve` as an operator meets it: the command line, auth, signals, systemd.

Each test runs the real daemon as a child process on 127.0.0.1:0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
from support.daemon import alive, wait_dead
from support.serve import SERVE, reaped, run_serve
from support.wsclient import connect, session

import trio_exec
from trio_exec.__main__ import build_parser


@contextmanager
def daemon(
    *flags: str, env: dict[str, str] | None = None, listen: str = "ws://127.0.0.1:0"
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(
        [*SERVE, "--listen", listen, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    with reaped(proc):
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith(listen.rsplit(":", 1)[0] + ":"), proc.stderr.read() if proc.stderr else url
        yield proc, url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:1", "Error: unsupported --listen URL `http://127.0.0.1:1`; expected `ws://HOST:PORT` or `wss://HOST:PORT`"),
        ("wss://127.0.0.1", "Error: invalid websocket --listen URL `wss://127.0.0.1`; expected `wss://HOST:PORT`"),
        ("ws://127.0.0.1", "Error: invalid websocket --listen URL `ws://127.0.0.1`; expected `ws://HOST:PORT`"),
        ("ws://127.0.0.1:70000", "Error: invalid websocket --listen URL `ws://127.0.0.1:70000`; expected `ws://HOST:PORT`"),
        ("ws://127.0.0.1:+80", "Error: invalid websocket --listen URL `ws://127.0.0.1:+80`; expected `ws://HOST:PORT`"),
        ("ws://[localhost]:1", "Error: invalid websocket --listen URL `ws://[localhost]:1`; expected `ws://HOST:PORT`"),
        ("ws://a b:1", "Error: invalid websocket --listen URL `ws://a b:1`; expected `ws://HOST:PORT`"),
    ],
)
def test_a_bad_listen_url_is_one_line_on_stderr_and_exit_2(url: str, message: str) -> None:
    done = run_serve("--listen", url)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [message]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--log-level", "foo", "unknown level `foo`; expected one of DEBUG, INFO, WARNING, ERROR"),
        ("--session-ttl", "-1", "must be a finite, non-negative number: -1"),
        ("--retention", "soon", "not a number of seconds: soon"),
        ("--ping-interval", "nan", "must be a finite, non-negative number: nan"),
        ("--ping-timeout", "0", "must be positive: 0"),
        ("--max-message-size", "inf", "not a size: inf"),
        ("--max-message-size", "0", "must be positive: 0"),
        ("--shutdown-grace", "", "not a number of seconds: "),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(flag: str, value: str, message: str) -> None:
    done = run_serve(flag, value)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"Error: argument {flag}: {message}"]


def test_a_log_level_is_accepted_in_any_case() -> None:
    """The parser upper-cases it (`info` was a traceback from logging before)."""
    args = build_parser().parse_args(["serve", "--log-level", "info"])
    assert args.log_level == "INFO"


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    done = subprocess.run([sys.executable, "-m", "trio_exec", flag],
                          capture_output=True, text=True, timeout=20)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"trio-exec {trio_exec.__version__}\n", "")


def test_the_top_level_help_is_written_for_users() -> None:
    done = subprocess.run([sys.executable, "-m", "trio_exec", "--help"],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0
    assert "Rule" not in done.stdout and "main(argv)" not in done.stdout  # no internal note
    for text in ("serve", "exec", "--version", "trio-exec serve --listen ws://127.0.0.1:8765"):
        assert text in done.stdout
    bare = subprocess.run([sys.executable, "-m", "trio_exec"], capture_output=True, text=True, timeout=20)
    assert (bare.returncode, bare.stdout, bare.stderr) == (2, "", done.stdout)  # the help, not an error


def test_a_port_in_use_names_the_address_and_exits_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve("--listen", f"ws://127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: cannot listen on ws://127.0.0.1:{port}: Address in use (os error 98)"
    ]


def test_a_host_name_that_does_not_resolve_is_one_line_and_exit_1() -> None:
    """`.invalid` never resolves (RFC 2606)."""
    done = run_serve("--listen", "ws://no-such-host.invalid:8765")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(
        "Error: cannot resolve the host of --listen `ws://no-such-host.invalid:8765`: "
    ), line


async def test_a_host_name_is_resolved_and_printed_as_given() -> None:
    """`ws://localhost:0` binds what localhost resolves to and prints `ws://localhost:PORT`,
    a URL that works."""
    with daemon(listen="ws://localhost:0") as (_, url):
        assert url.startswith("ws://localhost:") and int(url.rsplit(":", 1)[1]) > 0
        async with session(url) as client:
            output, _ = await client.run("hi", ["echo", "by name"])
        assert output == b"by name\n"


def test_ipv6_literal_prints_the_bound_url() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    proc = subprocess.Popen([*SERVE, "--listen", "ws://[::1]:0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("ws://[::1]:") and int(line.rsplit(":", 1)[1]) > 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close() if proc.stdout else None


async def test_sigterm_shuts_down_gracefully_killing_every_process() -> None:
    with daemon() as (proc, url):
        async with session(url) as client:
            await client.start_ok("s", ["sh", "-c", "echo $$; exec sleep 1000"])
            pid = int((await client.wait_output("s", b"\n")).decode())
            proc.send_signal(signal.SIGTERM)
            assert (await client.wait_closed()).code == 1001
        assert await trio.to_thread.run_sync(proc.wait, 10) == 0
        assert not alive(pid)


def _children(pid: int) -> list[int]:
    """Every child of `pid`, whichever of its threads forked it (threads come and go)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _client_that_never_answers_a_close(url: str) -> socket.socket:
    """A raw client whose session runs `sleep`; it reads nothing and so never answers the
    daemon's Close frame, which holds a graceful shutdown for the close timeout."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert b" 101 " in sock.recv(4096)
    for message in (
        b'{"id":1,"method":"initialize","params":{"clientName":"c"}}',
        b'{"method":"initialized","params":{}}',
        b'{"id":2,"method":"process/start","params":{"processId":"s",'
        b'"argv":["/bin/sleep","1000"],"cwd":"/","env":{},"tty":false}}',
    ):
        sock.sendall(bytes((0x81, 0x80 | len(message))) + b"\0\0\0\0" + message)
    return sock


def _read_frames_until(sock: socket.socket, wanted: Callable[[int, bytes], bool]) -> None:
    """Read the daemon's (unmasked) frames until `wanted(opcode, payload)`; bounded. Reading
    answers nothing: a Close read here is never answered."""
    sock.settimeout(10)
    buffer = b""

    def take(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            data = sock.recv(65536)
            assert data, "the daemon closed the socket"
            buffer += data
        taken, buffer = buffer[:n], buffer[n:]
        return taken

    while True:
        first, second = take(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(take(2), "big")
        elif length == 127:
            length = int.from_bytes(take(8), "big")
        if wanted(first & 0x0F, take(length)):
            return


async def test_a_second_signal_exits_at_once() -> None:
    """The first SIGTERM starts a graceful shutdown, held by a peer that never answers the
    Close; the second one SIGKILLs every process group and exits (status 1) without waiting."""
    with daemon() as (proc, url):
        sock = await trio.to_thread.run_sync(_client_that_never_answers_a_close, url)
        try:
            # the start's reply follows the spawn: the sleeper exists once the reply is read
            await trio.to_thread.run_sync(
                _read_frames_until, sock, lambda opcode, payload: b'"id":2' in payload)
            sleepers = [child for child in _children(proc.pid)
                        if _command(child) == b"/bin/sleep\x001000\x00"]
            assert sleepers
            proc.send_signal(signal.SIGTERM)
            # the daemon's Close: the graceful shutdown has begun and waits for the answer
            await trio.to_thread.run_sync(
                _read_frames_until, sock, lambda opcode, payload: opcode == 0x8)
            assert proc.poll() is None, "the graceful shutdown should still be waiting"
            proc.send_signal(signal.SIGTERM)
            try:
                await trio.to_thread.run_sync(proc.wait, 1)
            except subprocess.TimeoutExpired:
                raise AssertionError("the second signal did not exit at once") from None
            assert proc.returncode == 1
            with trio.fail_after(2):  # a SIGKILLed child still has to be scheduled to die
                for child in sleepers:
                    await wait_dead(child)
        finally:
            sock.close()


async def test_auth_token_is_required_on_the_upgrade(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with daemon("--auth-token-file", str(token_file)) as (_, url):
        host, port = url.removeprefix("ws://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            head = await stream.receive_some(4096)
        assert head.startswith(b"HTTP/1.1 401 ")
        async with connect(url, extra_headers=[(b"authorization", b"Bearer s3cret")]) as client:
            await client.handshake()
        ready = await trio.open_tcp_stream(host, int(port))
        async with ready:
            await ready.send_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await ready.receive_some(4096)).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\n", "Error: --auth-token-file is empty"),
        (b"two words\n", "Error: --auth-token-file must hold one token of printable ASCII, no spaces"),
        (b"line1\nline2\n", "Error: --auth-token-file must hold one token of printable ASCII, no spaces"),
        (b"\xff\xfe", "Error: cannot read --auth-token-file: not UTF-8 text"),
        (None, "Error: cannot read --auth-token-file: No such file or directory"),
    ],
)
def test_an_unusable_token_file_is_one_line_and_exit_2(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    """A token no client could send (spaces, several lines) is refused, not served."""
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_bytes(content)
    done = run_serve("--auth-token-file", str(token_file))
    assert (done.returncode, done.stderr.splitlines()) == (2, [message])


async def test_systemd_notify_ready_and_children_never_see_its_variables(tmp_path: Path) -> None:
    notify_path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        # a watchdog meant for another process (WATCHDOG_PID): not fed, and still scrubbed
        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1",
               "WATCHDOG_PID": "1"}
        with daemon(env=env) as (proc, url):
            notify.settimeout(10)
            assert notify.recv(4096).startswith(b"READY=1")
            async with session(url) as client:
                # no env.PATH: the daemon's own PATH finds `env`; its output is the child's env
                output, _ = await client.run("env", ["env"], env={"KEEP": "1", "NOTIFY_SOCKET": "x"})
            assert output == b"KEEP=1\n"
            proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096) == b"STOPPING=1"
            assert proc.wait(timeout=10) == 0


async def test_children_inherit_no_descriptor_of_the_daemon() -> None:
    """The daemon holds listening and connected sockets, pipes of other children and a PTY;
    a child sees only its own stdin, stdout and stderr (the 3 is `ls`'s own directory fd)."""
    with daemon() as (_, url):
        async with session(url) as client:
            await client.start_ok("held", ["sleep", "1000"], tty=True)
            for tty in (False, True):
                output, _ = await client.run(f"fds-{tty}", ["ls", "/proc/self/fd"], tty=tty)
                assert output.split() == [b"0", b"1", b"2", b"3"], output


async def test_systemd_socket_activation_serves_the_passed_socket() -> None:
    """`systemd-socket-activate` owns the port and hands it over as fd 3 (LISTEN_FDS), as the
    socket unit in deploy/ does; the daemon serves it and prints its address."""
    activate = trio.Path("/usr/bin/systemd-socket-activate")
    if not await activate.exists():
        pytest.skip("systemd-socket-activate is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await trio.lowlevel.open_process(
        [str(activate), "-l", f"127.0.0.1:{port}", *SERVE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        url = f"ws://127.0.0.1:{port}"
        with trio.fail_after(10):
            said = b""
            while b"Listening on" not in said:  # the activator owns the port from here on
                said += await proc.stderr.receive_some(4096)
            # the activator execs the daemon on the first connection
            async with session(url) as client:
                output, _ = await client.run("hi", ["echo", "activated"])
            printed = b""
            while b"\n" not in printed:
                printed += await proc.stdout.receive_some(4096)
        assert output == b"activated\n"
        assert printed.decode().strip() == url
    finally:
        proc.terminate()
        with trio.fail_after(10):
            await proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                await stream.aclose()
