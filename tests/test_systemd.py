"""systemd, complete: the watchdog fed at half its timeout, and activation fds checked.

The daemons are real `serve` children; the notify socket is a real datagram socket here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support import serve
from support.serve import reaped

from trio_exec import systemd

SERVE = [*serve.SERVE, "--listen", "ws://127.0.0.1:0"]


@pytest.mark.parametrize(
    ("environ", "period"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "<self>"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # another process's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_period_is_half_the_timeout_when_it_is_ours(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], period: float | None
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, str(os.getpid()) if value == "<self>" else value)
    assert systemd.watchdog_period() == period


def test_the_daemon_feeds_the_watchdog_after_ready(tmp_path: Path) -> None:
    notify_path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(10)
        env = {**os.environ, "NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "200000"}
        proc = subprocess.Popen(SERVE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        with reaped(proc):
            assert notify.recv(4096).startswith(b"READY=1")
            assert [notify.recv(4096) for _ in range(3)] == [b"WATCHDOG=1"] * 3
            proc.terminate()
            messages = []
            while (message := notify.recv(4096)) != b"STOPPING=1":
                messages.append(message)
            assert set(messages) <= {b"WATCHDOG=1"}
            assert proc.wait(timeout=10) == 0


LAUNCHER = """
import os, socket, sys
kind = sys.argv[1]
if kind == "udp":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
elif kind == "unlistened":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
elif kind == "unix":
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(sys.argv[2])
    sock.listen()
else:
    fd = os.open(os.devnull, os.O_RDONLY)
if kind != "file":
    fd = sock.fileno()
if fd != 3:
    os.dup2(fd, 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.executable, [sys.executable, "-m", "trio_exec", "serve"])
"""


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("udp", "Error: activation fd 3 is a AF_INET/SOCK_DGRAM socket; trio-exec serves TCP "
                "stream sockets (ListenStream=IP:PORT in the socket unit)"),
        ("unix", "Error: activation fd 3 is a AF_UNIX/SOCK_STREAM socket; trio-exec serves TCP "
                 "stream sockets (ListenStream=IP:PORT in the socket unit)"),
        ("unlistened", "Error: activation fd 3 is a AF_INET/SOCK_STREAM socket that is not listening"),
        ("file", "Error: activation fd 3 is not a socket (Socket operation on non-socket)"),
    ],
)
def test_an_activation_fd_that_is_not_a_listening_tcp_socket_is_one_line_and_exit_1(
    tmp_path: Path, kind: str, message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, kind, str(tmp_path / "sock")],
        capture_output=True, text=True, timeout=20,
    )
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (1, "", [message])
