"""The daemon's process limits: how many processes may be live, per session and in total.

Rules:
- A process is live from the moment its `process/start` reserves its id until its close event
  (every output stream ended and the leader exited) or the end of its supervision, whichever
  comes first: that is when it holds pids and descriptors. A closed process kept for
  `retention` holds only its output, which the retention budget (`retention.py`) bounds.
- A start beyond either limit is refused before anything is spawned, with -32603 naming the
  limit and its value (`process limit reached: 256 per session`); nothing else is affected.
- One `ProcessQuota` per daemon, shared by every session's table: the total count, the
  retention budget, the output spool directory when there is one (`spool.py`), the heap trimmer told of every discarded output (`heap.py`) and what
  children may inherit of the daemon's environment (`daemonenv.py`) live here, each session's
  own count in its table.
"""

from __future__ import annotations

import os
import resource

import attrs

from trio_exec.process.daemonenv import inheritable_environment
from trio_exec.process.heap import HeapTrimmer
from trio_exec.process.retention import RetentionBudget
from trio_exec.process.spool import SpoolDirectory

DEFAULT_MAX_PROCESSES_PER_SESSION = 256
#: The total default, unless the open-file limit is lower (`default_max_processes`).
MAX_PROCESSES_CEILING = 1024
#: Descriptors the daemon may hold for one process (stdin, stdout, stderr pipes, its pidfd) and
#: a share of the connections'.
DESCRIPTORS_PER_PROCESS = 5


def default_max_processes() -> int:
    """1024, or fewer where the daemon's open-file limit could not hold that many processes
    (a fifth of the soft limit: 204 at the common 1024), so the limit refuses before the OS."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_PROCESSES_CEILING
    return max(1, min(MAX_PROCESSES_CEILING, soft // DESCRIPTORS_PER_PROCESS))


@attrs.define(eq=False)
class ProcessQuota:
    """Invariant: `live` is the number of live processes of every table sharing this quota."""

    per_session: int = DEFAULT_MAX_PROCESSES_PER_SESSION
    total: int = attrs.field(factory=default_max_processes)
    budget: RetentionBudget = attrs.field(factory=RetentionBudget)
    heap: HeapTrimmer = attrs.field(factory=HeapTrimmer)
    spool: SpoolDirectory | None = None
    #: The daemon's environment without its own secrets: what `envPolicy.inherit` draws on.
    inheritable_env: dict[str, str] = attrs.field(
        factory=lambda: inheritable_environment(os.environ)
    )
    live: int = 0
