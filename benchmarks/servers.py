"""Start and stop the servers (trio-exec and the codex references), and read their memory figures.

The servers are started by the test suite's launcher (``tests/support/servers.py``: one
launcher for tests and benchmarks), each on ``ws://127.0.0.1:0`` in a private temporary
directory with RLIMIT_NOFILE raised to its hard limit. ``stop()`` stops the server and then
kills any process it spawned that outlived it (children lead their own process groups, so
stopping the server alone would leave e.g. ``sleep 1000`` behind).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import resource
import signal
import tempfile
from pathlib import Path
from typing import Any

from tests.support import servers as launcher
from tests.support.servers import (
    REFERENCE,
    REFERENCE_0169,
    REFERENCE_0171,
    REFERENCES_0169_DIALECT,
    TRIO_EXEC,
    ServerStartError,
    reference_binary,
    reference_binary_of,
)

__all__ = [
    "REFERENCE",
    "REFERENCES_0169_DIALECT",
    "REFERENCE_0169",
    "REFERENCE_0171",
    "TRIO_EXEC",
    "Server",
    "ServerStartError",
    "reference_binary",
    "reference_binary_of",
]

#: Servers not stopped yet; stopped at exit whatever happens (e.g. Ctrl-C mid-start).
_LIVE: set[Server] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def raise_nofile() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return the limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


_prctl: Any = None
with contextlib.suppress(OSError, AttributeError):  # resolved here, not in the forked child
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _preexec() -> None:
    raise_nofile()
    # Die with the bench, even if it is SIGKILLed (PR_SET_PDEATHSIG = 1).
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, starttime) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[19])


def children_of(pid: int) -> list[tuple[int, int, int]]:
    """[(pid, pgid, starttime)] of the direct children of ``pid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _proc_stat(int(name))
        if st is not None and st[0] == pid:
            out.append((int(name), st[1], st[2]))
    return out


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of ``pid`` so far, in seconds (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


#: The daemon's own limits (`serve --help`, "limits") sit far above what a devbox needs but
#: below the bench's deliberate excess (1000 processes in one session, 4000 sessions): the bench
#: measures the daemon's work at that scale, so a trio-exec that has the limits gets them lifted.
LIFTED_LIMITS = (
    "--max-connections", "100000", "--max-sessions", "100000",
    "--max-processes-per-session", "100000", "--max-processes", "100000",
    "--max-pending-requests", "100000",
)


def _has_limits(src: str | None) -> bool:
    """Whether the trio-exec under test (a `--rev` snapshot, else this checkout) has them."""
    root = Path(src) if src else Path(__file__).resolve().parents[1]
    try:
        return "--max-processes-per-session" in (root / "trio_exec" / "__main__.py").read_text()
    except OSError:
        return False


class Server:
    """One running server."""

    def __init__(self, kind: str, extra_args: tuple[str, ...] = (), *,
                 lift_limits: bool = True) -> None:
        self.kind = kind
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        self.cwd = Path(self._tmp.name)
        env = dict(os.environ)
        src = os.environ.get("TRIO_EXEC_BENCH_SRC")
        if kind == TRIO_EXEC and src:  # run a snapshot of the package (``--rev``)
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        if kind == TRIO_EXEC and lift_limits and _has_limits(src):
            extra_args = (*LIFTED_LIMITS, *extra_args)
        try:
            self.handle = launcher.launch(
                kind, *extra_args, cwd=self.cwd, env=env, preexec_fn=_preexec)
        except BaseException:
            self._tmp.cleanup()
            raise
        self._children: dict[int, tuple[int, int]] = {}
        _LIVE.add(self)
        self.proc = self.handle.proc
        self.url = self.handle.url
        self.host = self.handle.host
        self.port = self.handle.port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, n: int = 2000) -> str:
        return self.handle.stderr_text()[-n:]

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def nofile_limit(self) -> str:
        try:
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return " ".join(line.split()[3:5])
        except OSError:
            pass
        return "?"

    def remember_children(self) -> None:
        """Record the server's current children so stop() can kill survivors."""
        for pid, pgid, start in children_of(self.pid):
            self._children[pid] = (pgid, start)

    def alive(self) -> bool:
        return self.handle.alive()

    def stop(self) -> None:
        _LIVE.discard(self)
        if self.proc.poll() is None:
            self.remember_children()
        self.handle.stop()
        # Kill what the server spawned and left behind (verified by pid + start time).
        for pid, (pgid, start) in self._children.items():
            st = _proc_stat(pid)
            if st is None or st[2] != start:
                continue
            try:
                if pgid == pid:
                    os.killpg(pgid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._children.clear()
        with contextlib.suppress(OSError):
            self.handle.stderr_path.unlink()
        self._tmp.cleanup()
