"""systemd integration: readiness notification and socket activation.

Rules: `notify()` never raises and does nothing off systemd; `take_activation_sockets()` consumes
`LISTEN_FDS` only when `LISTEN_PID` is this process; `scrub_environment()` (called after
activation sockets are taken) removes systemd's variables from the daemon's environment so no child can inherit them.
"""

from __future__ import annotations

import os
import socket

from trio_exec.process.spawn import SERVICE_MANAGER_VARIABLES as VARIABLES

LISTEN_FDS_START = 3

def scrub_environment() -> str | None:
    """Remove systemd's variables; returns the notify socket path they named, if any."""
    notify_socket = os.environ.get("NOTIFY_SOCKET")
    for name in VARIABLES:
        os.environ.pop(name, None)
    return notify_socket


def notify(path: str | None, state: str) -> None:
    if not path:
        return
    if path.startswith("@"):
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(path)
            sock.sendall(state.encode())
    except OSError:
        pass


def take_activation_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed us (empty when not socket-activated)."""
    try:
        if int(os.environ.get("LISTEN_PID", "0")) != os.getpid():
            return []
        count = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        return []
    sockets = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        os.set_inheritable(fd, False)
        sockets.append(socket.socket(fileno=fd))
    return sockets
