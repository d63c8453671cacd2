"""systemd integration: notifications, the watchdog, socket activation.

Rules: `notify()` never raises and does nothing off systemd; `take_activation_sockets()` consumes
`LISTEN_FDS` only when `LISTEN_PID` is this process, and accepts only listening TCP stream
sockets (anything else is an `ActivationError` naming the fd and what it is);
`watchdog_period()` is half of `WATCHDOG_USEC` when the watchdog is meant for this process
(`WATCHDOG_PID` absent or ours); `scrub_environment()` (called after the activation sockets and
the watchdog were read) removes systemd's variables from the daemon's environment so no child
can inherit them.
"""

from __future__ import annotations

import os
import socket

from trio_exec.process.spawn import SERVICE_MANAGER_VARIABLES as VARIABLES

LISTEN_FDS_START = 3


class ActivationError(OSError):
    """systemd passed a descriptor the daemon cannot serve; `str(err)` is the line for stderr."""


def watchdog_period() -> float | None:
    """Seconds between `WATCHDOG=1` notifications (half the timeout), or None without one."""
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", "0"))
        pid = int(os.environ.get("WATCHDOG_PID", str(os.getpid())))
    except ValueError:
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 2 / 1_000_000

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
        sockets.append(_checked(fd))
    return sockets


def _checked(fd: int) -> socket.socket:
    """The socket on `fd` if it is a listening TCP stream socket; else `ActivationError`."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise ActivationError(f"activation fd {fd} is not a socket ({exc.strerror})") from None
    kind = f"{sock.family.name}/{sock.type.name}"
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        sock.detach()
        raise ActivationError(
            f"activation fd {fd} is a {kind} socket; trio-exec serves TCP stream sockets "
            "(ListenStream=IP:PORT in the socket unit)"
        )
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ActivationError(f"activation fd {fd} is a {kind} socket that is not listening")
    return sock
