"""Counting a running daemon from outside: its processes, its open fds, its sessions.

Rule: a fault test takes a census before the fault and waits, bounded, until the census after
it is equal; "no leak" is an equality of counts, never an absence observed for a while.

* processes: every descendant of the daemon (a walk of the parent links in procfs) plus every
  process on the machine carrying the test's marker in its environment, so a grandchild that
  was reparented away from the daemon is still counted;
* fds: the entries of the daemon's fd directory in procfs;
* sessions: sessions the daemon's log says it created minus those it says ended (the daemon
  runs with `--log-level INFO`); for a server that logs no sessions (the reference) it is None.

Waiting polls these OS facts every few milliseconds up to a deadline (`settled`).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

#: The environment variable that tags every child a fault test starts.
MARKER_VAR = "TRIO_EXEC_FAULT_MARK"
POLL = 0.02

_CREATED = re.compile(r"\bsess-[0-9a-f]{8} created for\b")
_ENDED = re.compile(r"\bsess-[0-9a-f]{8} ended\b")


@attrs.frozen
class Counts:
    processes: int
    fds: int
    sessions: int | None

    def __str__(self) -> str:
        sessions = "?" if self.sessions is None else self.sessions
        return f"{self.processes} processes, {self.fds} fds, {sessions} sessions"


def new_marker() -> str:
    return uuid.uuid4().hex


def marked_env(marker: str, **extra: str) -> dict[str, str]:
    """A child environment (the `env` of `process/start`) carrying `marker`."""
    return {"PATH": "/usr/bin:/bin", MARKER_VAR: marker, **extra}


def _parent_links() -> dict[int, int]:
    links: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited during the walk
        # the command name (2nd field) may hold spaces and parentheses: split after the last ')'
        links[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    return links


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parent_links().items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def marked(marker: str) -> set[int]:
    """Live processes whose environment carries `marker` (zombies have no environment)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.add(int(entry))
    return found


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def logged_sessions(log_text: str) -> int:
    return len(_CREATED.findall(log_text)) - len(_ENDED.findall(log_text))


@attrs.define(eq=False)
class Census:
    """Counts for the daemon `pid`; `log` returns its log so far (None: sessions unknown)."""

    pid: int
    marker: str
    log: Callable[[], str] | None = None

    def processes(self) -> set[int]:
        return descendants(self.pid) | marked(self.marker)

    def take(self) -> Counts:
        return Counts(
            processes=len(self.processes()),
            fds=open_fds(self.pid),
            sessions=None if self.log is None else logged_sessions(self.log()),
        )

    async def settled(self, expected: Counts, *, within: float = 15.0) -> Counts:
        """The census once it equals `expected`, or the last one taken at the deadline."""
        with trio.move_on_after(within):
            while (counts := self.take()) != expected:  # noqa: ASYNC110 (procfs has no events)
                await trio.sleep(POLL)
            return counts
        return self.take()

    async def wait_for(self, predicate: Callable[[Counts], bool], *, within: float = 15.0) -> Counts:
        """The first census satisfying `predicate` (TooSlowError at the deadline)."""
        with trio.fail_after(within):
            while not predicate(counts := self.take()):  # noqa: ASYNC110 (procfs has no events)
                await trio.sleep(POLL)
            return counts
