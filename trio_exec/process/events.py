"""What the process service reports: a read of a process's log and its events, as domain values.

Rules:
- Output is `bytes`, states are plain values; nothing here knows base64, member names or which
  members a dialect carries. `rpc/process_methods.py` makes the `process/read` result from a
  `ProcessRead`, `rpc/notifications.py` the notifications from the events; the local
  `Environment` uses them as they are.
- A process emits exactly one event per log event (`outputlog.py`), in seq order, and
  `ProcessClosed` last (`managed.py`). `ProcessExited.dialect` is the dialect of the process's
  `process/start`: it decides which members its notification carries (`sandboxDenied`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from trio_exec.process.outputlog import Chunk
from trio_exec.process.usage import ResourceUsage
from trio_exec.proto.dialect import Dialect


@attrs.frozen(kw_only=True)
class ProcessRead:
    """One read of a process's log after `after_seq` (`ManagedProcess.read`)."""

    after_seq: int
    #: Retained chunks with seq > after_seq, ascending (`OutputLog.read`).
    chunks: list[Chunk]
    next_seq: int
    #: Set when output with seq in (after_seq, first_retained_seq) was dropped (retention).
    first_retained_seq: int | None
    exited: bool
    exit_code: int | None
    signal: str | None
    #: Whether the child looks denied by its sandbox (`managed.py`); False when unconfined.
    sandbox_denied: bool
    closed: bool


@attrs.frozen(kw_only=True)
class ProcessOutput:
    process_id: str
    chunk: Chunk


@attrs.frozen(kw_only=True)
class ProcessExited:
    process_id: str
    seq: int
    exit_code: int
    signal: str | None
    sandbox_denied: bool
    dialect: Dialect
    #: CPU times and peak RSS of the child (`usage.py`), when they could be read.
    resource_usage: ResourceUsage | None = None


@attrs.frozen(kw_only=True)
class ProcessClosed:
    process_id: str
    seq: int


ProcessEvent = ProcessOutput | ProcessExited | ProcessClosed

#: Where a process's events go (the session; a local environment drops them).
Emit = Callable[[ProcessEvent], Awaitable[None]]
