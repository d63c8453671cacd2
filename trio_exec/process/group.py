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
"""

from __future__ import annotations

import contextlib
import os

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


def has_members(pgid: int) -> bool:
    """Whether a process other than the leader `pgid` is in group `pgid` (blocking: /proc)."""
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == pgid:
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                    stat = stat_file.read()
            except OSError:  # it ended meanwhile
                continue
            # after "pid (comm) ": state, ppid, pgrp, ... (comm may hold spaces and parentheses)
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[2]) == pgid:
                return True
    return False
