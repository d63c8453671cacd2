"""A child's process group, and the rule that keeps its SIGKILL from reaching a stranger.

Every child leads its own session and process group: pid = pgid = sid = N (`spawn.py`).

Rules:
- The daemon signals group N only while it has not reaped the leader N. An unreaped leader,
  running or a zombie, keeps the number N allocated (the kernel frees a pid number only when no
  process uses it as pid, process group or session id any more), and only the leader's
  descendants can be in its session, so only they can be in group N: the signal cannot reach
  a stranger, however long ago the leader exited.
- So the leader's exit is observed without reaping it (`wait_exited`: a pidfd's wakeup, then
  `waitid(WNOWAIT)`), and the leader is reaped only after its group was SIGKILLed; after that
  reap, N is never signalled again (`ManagedProcess` owns that order).
- Whether the group has members besides its exited leader is read from /proc (`has_members`);
  a member forked while the scan runs may be missed, which is why a group is SIGKILLed before
  its leader is reaped even when the scan found nobody.
- One pass over /proc answers every group asked about: a question waits for the next pass
  (begun after it was asked, so it sees every process alive when it was asked), and that pass
  answers every question waiting when it began (`MemberScans`, one per event loop). A pass
  costs one read of every process's stat, so N closes at once cost one pass, not N.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection

import attrs
import trio


async def wait_exited(pid: int) -> int:
    """The exit status of the unreaped child `pid` once it has exited (negative: the signal
    that killed it), leaving it a zombie. Cancellation: nothing is left open."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            await trio.lowlevel.wait_readable(pidfd)
            # WNOHANG: never blocks the loop; None if the wakeup came before the exit
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)  # noqa: ASYNC222
            if info is not None:
                break
    finally:
        os.close(pidfd)
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def kill(pgid: int, sig: int) -> None:
    """Signal the group; a group that has no member left is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def groups_with_members(leaders: Collection[int]) -> set[int]:
    """Those of `leaders` whose group holds a process other than the leader (blocking: one
    pass over /proc)."""
    found: set[int] = set()
    with os.scandir("/proc") as entries:
        for entry in entries:
            name = entry.name
            if not name.isdigit():
                continue
            try:
                fd = os.open(f"/proc/{name}/stat", os.O_RDONLY)
            except OSError:  # it ended meanwhile
                continue
            try:
                stat = os.read(fd, 4096)
            except OSError:
                continue
            finally:
                os.close(fd)
            end = stat.rfind(b")")
            if end < 0:
                continue
            # after "pid (comm) ": state, ppid, pgrp, ... (comm may hold spaces and parentheses)
            pgrp = int(stat[end + 2 :].split(b" ", 3)[2])
            if pgrp in leaders and pgrp != int(name):
                found.add(pgrp)
    return found


@attrs.define(eq=False)
class _Question:
    pgid: int
    answer: bool | None = None


@attrs.define(eq=False)
class MemberScans:
    """Invariants: `_asked` holds the questions no pass has taken yet; at most one pass runs
    (`_scanning`), in the task of one of the askers; `_pass_done` is set after each pass."""

    _asked: list[_Question] = attrs.field(factory=list)
    _scanning: bool = False
    _pass_done: trio.Event = attrs.field(factory=trio.Event)
    #: Test counter: passes over /proc made so far.
    passes: int = 0

    async def has_members(self, pgid: int) -> bool:
        """Whether group `pgid` holds a process besides its leader. Cancellation: the question
        is withdrawn (a pass it is part of still answers the others)."""
        question = _Question(pgid)
        self._asked.append(question)
        try:
            while question.answer is None:
                if self._scanning:
                    await self._pass_done.wait()
                else:
                    await self._scan()
        finally:
            if question in self._asked:
                self._asked.remove(question)
        return question.answer

    async def _scan(self) -> None:
        """One pass answering every question asked so far."""
        self._scanning = True
        batch, self._asked = self._asked, []
        self.passes += 1
        try:
            found = await trio.to_thread.run_sync(
                groups_with_members, frozenset(q.pgid for q in batch))
            for question in batch:
                question.answer = question.pgid in found
        finally:
            self._asked.extend(q for q in batch if q.answer is None)  # a failed pass: asked again
            self._scanning = False
            self._pass_done.set()
            self._pass_done = trio.Event()


_SCANS: trio.lowlevel.RunVar[MemberScans] = trio.lowlevel.RunVar("member_scans")


def member_scans() -> MemberScans:
    """The event loop's `MemberScans`."""
    try:
        return _SCANS.get()
    except LookupError:
        scans = MemberScans()
        _SCANS.set(scans)
        return scans


async def has_members(pgid: int) -> bool:
    """Whether a process other than the leader `pgid` is in group `pgid` (answered with the
    other groups asked about meanwhile, by one pass over /proc)."""
    return await member_scans().has_members(pgid)
