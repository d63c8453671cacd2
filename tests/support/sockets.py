"""Inspect the server's side of a TCP connection (Linux only).

``server_socket_option`` finds the accepted socket in the server process by its port pair
(``/proc/net/tcp*`` → inode → ``/proc/PID/fd``), duplicates it into the test process with
``pidfd_getfd(2)`` and reads a socket option from the duplicate. It needs ptrace rights over
the server (the server is the test's own child).
"""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

SYS_pidfd_getfd = 438  # x86_64 and aarch64 (asm-generic)


class Unavailable(RuntimeError):
    """The kernel or the permissions do not allow the inspection."""


def _socket_inode(local_port: int, remote_port: int) -> int:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if (int(local.rsplit(":", 1)[1], 16) == local_port
                    and int(remote.rsplit(":", 1)[1], 16) == remote_port and inode):
                return inode
    raise LookupError(f"no TCP socket {local_port} <- {remote_port}")


def _fd_of_inode(pid: int, inode: int) -> int:
    target = f"socket:[{inode}]"
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(entry) == target:
                return int(entry.name)
        except OSError:
            continue
    raise LookupError(f"process {pid} has no fd for {target}")


def server_socket_option(pid: int, server_port: int, client_port: int, level: int,
                         option: int) -> int:
    """getsockopt on the server's accepted socket for the connection from ``client_port``."""
    fd = _fd_of_inode(pid, _socket_inode(server_port, client_port))
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        local = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if local < 0:
            err = ctypes.get_errno()
            raise Unavailable(f"pidfd_getfd: {os.strerror(err)}")
    finally:
        os.close(pidfd)
    sock = socket.socket(fileno=local)
    try:
        return sock.getsockopt(level, option)
    finally:
        sock.close()
