"""A command's resource usage, reported in `process/exited` (`resourceUsage`, docs/extensions.md).

Rules:
- Read when the leader has exited and is still unreaped (`group.py` keeps it so): the kernel's
  `waitid(WNOWAIT)` fills a `struct rusage` for the zombie with the leader's own usage plus that
  of every descendant it waited for (RUSAGE_BOTH), and leaves it unreaped. Python's
  `os.waitid` does not pass that argument, so the system call is made directly.
- With containment (`cgroup.py`) the CPU times are the cgroup's instead: every process that ran
  in it, waited for or not, up to the leader's exit. The peak RSS is always the largest single
  process's, from the kernel's rusage.
- On an architecture whose system call number is not known here, or if the call fails, there is
  no usage (None) and the member is left out; nothing else changes.
"""

from __future__ import annotations

import ctypes
import os
import platform

import attrs

#: waitid's number where the C library does not expose its rusage argument.
_SYS_WAITID = {"x86_64": 247, "aarch64": 95, "riscv64": 95, "ppc64le": 272, "s390x": 281}.get(
    platform.machine())
_libc = ctypes.CDLL(None, use_errno=True)
_SIGINFO_SIZE = 128
_RUSAGE_LONGS = 18  # struct rusage: two timevals, then fourteen longs; ru_maxrss first of them


class _Rusage(ctypes.Structure):
    _fields_ = [("longs", ctypes.c_long * _RUSAGE_LONGS)]


@attrs.frozen(kw_only=True)
class ResourceUsage:
    user_cpu_usec: int
    system_cpu_usec: int
    max_rss_bytes: int


def of_exited(pid: int, cgroup_cpu_usec: tuple[int, int] | None = None) -> ResourceUsage | None:
    """The usage of the exited, unreaped child `pid`; CPU from the cgroup when given."""
    if _SYS_WAITID is None:
        return None
    info = ctypes.create_string_buffer(_SIGINFO_SIZE)
    rusage = _Rusage()
    options = os.WEXITED | os.WNOWAIT | os.WNOHANG
    if _libc.syscall(_SYS_WAITID, os.P_PID, pid, info, options, ctypes.byref(rusage)) != 0:
        return None
    longs = rusage.longs
    user, system = longs[0] * 1_000_000 + longs[1], longs[2] * 1_000_000 + longs[3]
    if cgroup_cpu_usec is not None:
        user, system = cgroup_cpu_usec
    return ResourceUsage(user_cpu_usec=user, system_cpu_usec=system, max_rss_bytes=longs[4] * 1024)
