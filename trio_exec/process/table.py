"""The process table of one session: process ids → managed processes.

Rules:
- The table is the only owner of the id → process map of its session.
- An id is reserved while its `process/start` is in flight; another request naming it waits
  for that start to finish (and then sees the process, or no process if the start failed).
- A duplicate id is refused while the old entry is retained; a failed spawn registers nothing.
- Each process's supervising task runs in the session's nursery, so the session's end kills
  and reaps it. The table knows every supervised process, also one whose entry was forgotten
  but whose group still holds a background job (`kill_every_group`).
"""

from __future__ import annotations

import logging
import os

import attrs
import trio

from trio_exec.process.events import ProcessEvents
from trio_exec.process.managed import ManagedProcess, Notify
from trio_exec.process.spawn import SpawnError, SpawnRequest, spawn
from trio_exec.proto import errors
from trio_exec.proto.dialect import Dialect

log = logging.getLogger(__name__)

DEFAULT_RETENTION = 30.0


@attrs.define(eq=False)
class ProcessTable:
    """Invariant: a key maps to a `trio.Event` exactly while its start is in flight."""

    _nursery: trio.Nursery
    _notify: Notify
    retention: float = DEFAULT_RETENTION
    events: ProcessEvents = attrs.field(factory=ProcessEvents)
    _entries: dict[str, ManagedProcess | trio.Event] = attrs.field(factory=dict)
    _supervised: set[ManagedProcess] = attrs.field(factory=set)

    async def start(
        self, process_id: str, request: SpawnRequest, dialect: Dialect = Dialect.V0120
    ) -> ManagedProcess:
        """Spawn and register. The caller must `publish()` the process once its start
        response is queued. Raises `InvalidRequest` for a duplicate id, `InternalError` with
        the OS text when the spawn fails."""
        if process_id in self._entries:
            raise errors.process_exists(process_id)
        starting = trio.Event()
        self._entries[process_id] = starting
        try:
            spawned = await spawn(request)
        except SpawnError as exc:
            del self._entries[process_id]
            starting.set()
            raise errors.InternalError(str(exc)) from None
        except BaseException:
            del self._entries[process_id]
            starting.set()
            raise
        process = ManagedProcess(
            process_id=process_id,
            argv=list(request.argv),
            tty=request.tty,
            spawned=spawned,
            notify=self._notify,
            forget=self._forget,
            retention=self.retention,
            dialect=dialect,
            sandboxed=request.confinement is not None,
            events=self.events,
        )
        self.events.process_started()
        log.info("%s started: pid %d, %s%s", process_id, spawned.pid,
                 os.path.basename(request.argv[0]) if request.argv else "?",
                 " (pty)" if request.tty else "")
        self._entries[process_id] = process
        starting.set()
        # Shielded: once spawned, the child must be supervised (killed and reaped at the end),
        # even if the request that started it is being cancelled.
        with trio.CancelScope(shield=True):
            await self._nursery.start(self._supervise, process)
        return process

    async def _supervise(
        self, process: ManagedProcess, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._supervised.add(process)
        try:
            await process.supervise(task_status=task_status)
        finally:
            self._supervised.discard(process)

    def kill_every_group(self) -> None:
        """SIGKILL the group of every supervised process now (the daemon's second signal)."""
        for process in self._supervised:
            process.kill_group()

    async def get(self, process_id: str) -> ManagedProcess | None:
        """The process, waiting for an in-flight start of that id to finish."""
        entry = self._entries.get(process_id)
        while isinstance(entry, trio.Event):
            await entry.wait()
            entry = self._entries.get(process_id)
        return entry

    async def require(self, process_id: str) -> ManagedProcess:
        process = await self.get(process_id)
        if process is None:
            raise errors.unknown_process(process_id)
        return process

    def processes(self) -> list[ManagedProcess]:
        return [p for p in self._entries.values() if isinstance(p, ManagedProcess)]

    def _forget(self, process: ManagedProcess) -> None:
        if self._entries.get(process.process_id) is process:
            del self._entries[process.process_id]
