"""The safe default: no token on a non-loopback address is refused unless allowed.

Real daemons on real sockets: the wildcard 0.0.0.0 is reachable from the network, so it is
refused without a token (exit 2, one line), served with a warning under
`--allow-unauthenticated`, and served quietly with a token; loopback needs nothing. A
socket-activated listener is judged by its bound address.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import trio
from support.serve import SERVE

from trio_exec.exposure import is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
     ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.0.1", False),
     ("fe80::1%eth0", False), ("::ffff:10.0.0.1", False)],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def start(*flags: str) -> tuple[subprocess.Popen[str], str]:
    """A daemon, and its first stdout line (empty when it exited first)."""
    proc = subprocess.Popen([*SERVE, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop(proc: subprocess.Popen[str]) -> str:
    """Stop it; its stderr."""
    if proc.poll() is None:
        proc.terminate()
    _, err = proc.communicate(timeout=20)
    return err


REFUSAL = ("Error: refusing to serve ws://0.0.0.0:{port} without a token: anyone who can reach "
           "it could run commands here; set --auth-token-file or --auth-token-sha256, listen on "
           "loopback, or pass --allow-unauthenticated")


def test_the_wildcard_without_a_token_is_refused() -> None:
    proc, url = start("--listen", "ws://0.0.0.0:0")
    err = stop(proc)
    assert (proc.returncode, url) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith("Error: refusing to serve ws://0.0.0.0:"), line
    port = line.split("ws://0.0.0.0:", 1)[1].split(" ", 1)[0]
    assert line == REFUSAL.format(port=port)


def test_allow_unauthenticated_serves_with_a_warning() -> None:
    proc, url = start("--listen", "ws://0.0.0.0:0", "--allow-unauthenticated")
    try:
        assert url.startswith("ws://0.0.0.0:")
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        err = stop(proc)
    assert f"serving {url} WITHOUT a token (--allow-unauthenticated)" in err, err


@pytest.mark.parametrize("token_flag", ["--auth-token-file", "--auth-token-sha256"])
def test_a_token_makes_the_wildcard_fine(tmp_path: Path, token_flag: str) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    value = str(token) if token_flag == "--auth-token-file" else "ab" * 32
    proc, url = start("--listen", "ws://0.0.0.0:0", token_flag, value)
    err = stop(proc)
    assert url.startswith("ws://0.0.0.0:")
    assert "WITHOUT a token" not in err


@pytest.mark.parametrize("listen", ["ws://localhost:0", "ws://127.0.0.2:0"])
def test_loopback_needs_no_token(listen: str) -> None:
    proc, url = start("--listen", listen)
    err = stop(proc)
    assert url.startswith(listen.removesuffix("0")), err
    assert "WITHOUT a token" not in err


async def test_a_socket_activated_wildcard_is_judged_by_its_bound_address() -> None:
    """The activator binds 0.0.0.0 and starts the daemon at the first connection: the daemon
    refuses to serve that socket without a token (it never reads `--listen` then)."""
    activate = trio.Path("/usr/bin/systemd-socket-activate")
    if not await activate.exists():
        pytest.skip("systemd-socket-activate is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = await trio.lowlevel.open_process(
        [str(activate), "-l", f"0.0.0.0:{port}", *SERVE], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        with trio.fail_after(20):
            said = b""
            while b"Listening on" not in said:
                said += await proc.stderr.receive_some(4096)
            knock = await trio.open_tcp_stream("127.0.0.1", port)
            async with knock:
                while f"refusing to serve ws://0.0.0.0:{port}".encode() not in said:
                    data = await proc.stderr.receive_some(4096)
                    assert data, said
                    said += data
            assert await proc.wait() == 2
    finally:
        proc.kill()
        await proc.wait()
