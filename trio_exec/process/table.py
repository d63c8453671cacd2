"""The process table of one session: process ids → managed processes.

Rules:
- The table is the only owner of the id → process map of its session.
- An id is reserved while its `process/start` is in flight; another request naming it waits
  for that start to finish (and then sees the process, or no process if the start failed).
- A duplicate id is refused while the old entry is retained; a failed spawn registers nothing.
- Each process's supervising task runs in the session's nursery, so the session's end kills
  and reaps it. The table knows every supervised process, also one whose entry was forgotten
  but whose group still holds a background job (`kill_every_group`).
- With containment (`cgroup.py`) each child is spawned into a cgroup of its own, made here
  before the spawn; a cgroup that cannot be made fails the start (nothing runs uncontained)
  and a failed spawn leaves no cgroup.
- Limits (`limits.py`): a start beyond the session's or the daemon's count of live processes
  is refused before anything is spawned; a process stops counting at its close or when its
  supervision ends. Every output log draws on the daemon's retention budget and leaves it
  when the process is forgotten or its supervision ends; its memory is then given back
  (`outputlog.py`, and the heap trimmer is asked to run: `heap.py`).
- With an output spool (`spool.py`) each process gets one at its start, its writer running in
  the session's nursery, and loses it (files removed) with its output log. A spool that cannot
  be opened is said in the log; the process runs without one.

Test event: `_for_testing_registered` is set when a process enters the table, then replaced by
a fresh one (a waiter holds the one it took before the start).
"""

from __future__ import annotations

import logging
import os

import attrs
import trio

from trio_exec.process.cgroup import Containment, ProcessCgroup
from trio_exec.process.events import Emit
from trio_exec.process.heap import TRIM_AFTER_BYTES
from trio_exec.process.limits import ProcessQuota
from trio_exec.process.managed import ManagedProcess
from trio_exec.process.observer import ProcessEvents
from trio_exec.process.outputlog import OutputLog
from trio_exec.process.spawn import SpawnError, SpawnRequest, spawn
from trio_exec.process.spool import ProcessSpool
from trio_exec.proto import errors
from trio_exec.proto.dialect import Dialect

log = logging.getLogger(__name__)

DEFAULT_RETENTION = 30.0


@attrs.define(eq=False)
class ProcessTable:
    """Invariants: a key maps to a `trio.Event` exactly while its start is in flight;
    `_live` counts the starts in flight and the processes in `_holding` (started, not yet
    closed), and each of them is counted once in `quota.live` too."""

    _nursery: trio.Nursery
    _emit: Emit
    retention: float = DEFAULT_RETENTION
    quota: ProcessQuota = attrs.field(factory=ProcessQuota)
    containment: Containment | None = None
    events: ProcessEvents = attrs.field(factory=ProcessEvents)
    _entries: dict[str, ManagedProcess | trio.Event] = attrs.field(factory=dict)
    _supervised: set[ManagedProcess] = attrs.field(factory=set)
    _live: int = 0
    _holding: set[ManagedProcess] = attrs.field(factory=set)
    _for_testing_registered: trio.Event = attrs.field(factory=trio.Event)

    async def start(
        self, process_id: str, request: SpawnRequest, dialect: Dialect = Dialect.V0120
    ) -> ManagedProcess:
        """Spawn and register. The caller must `publish()` the process once its start
        response is queued. Raises `InvalidRequest` for a duplicate id, `InternalError` with
        the OS text when the spawn fails."""
        if process_id in self._entries:
            raise errors.process_exists(process_id)
        self._reserve()
        starting = trio.Event()
        self._entries[process_id] = starting
        cgroup: ProcessCgroup | None = None
        try:
            if self.containment is not None:
                cgroup = self._make_cgroup()
            spawned = await spawn(request, cgroup)
        except BaseException as exc:
            del self._entries[process_id]
            self._unreserve()
            starting.set()
            if cgroup is not None:
                with trio.CancelScope(shield=True):
                    await cgroup.remove_when_empty()
            if isinstance(exc, SpawnError):
                # 0.169 dialect: the additive `data` codex 0.171 sends (0.169 clients ignore it)
                data = {"kind": exc.kind} if exc.kind and dialect is Dialect.V0169 else None
                raise errors.InternalError(str(exc), data=data) from None
            raise
        finally:
            if cgroup is not None:
                cgroup.spawned()
        spool = self._open_spool(process_id)
        process = ManagedProcess(
            process_id=process_id,
            argv=list(request.argv),
            tty=request.tty,
            spawned=spawned,
            emit=self._emit,
            forget=self._forget,
            retention=self.retention,
            dialect=dialect,
            sandboxed=request.confinement is not None,
            cgroup=cgroup,
            log=OutputLog(budget=self.quota.budget),
            on_close=self._release,
            events=self.events,
            spool=spool,
        )
        if spool is not None:
            self._nursery.start_soon(spool.run)
        self._holding.add(process)
        self.events.process_started()
        log.info("%s started: pid %d, %s%s", process_id, spawned.pid,
                 os.path.basename(request.argv[0]) if request.argv else "?",
                 " (pty)" if request.tty else "")
        self._entries[process_id] = process
        starting.set()
        self._for_testing_registered.set()
        self._for_testing_registered = trio.Event()
        # Shielded: once spawned, the child must be supervised (killed and reaped at the end),
        # even if the request that started it is being cancelled.
        with trio.CancelScope(shield=True):
            await self._nursery.start(self._supervise, process)
        return process

    def _open_spool(self, process_id: str) -> ProcessSpool | None:
        if self.quota.spool is None:
            return None
        try:
            return self.quota.spool.open(process_id)
        except OSError as exc:
            log.warning("%s: no output spool: %s", process_id, exc)
            return None

    def _make_cgroup(self) -> ProcessCgroup:
        assert self.containment is not None
        try:
            return self.containment.create()
        except OSError as exc:
            raise SpawnError(
                f"cannot create the process's cgroup: {os.strerror(exc.errno or 0)}") from None

    async def _supervise(
        self, process: ManagedProcess, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self._supervised.add(process)
        try:
            await process.supervise(task_status=task_status)
        finally:
            self._supervised.discard(process)
            self._release(process)
            self._discard_output(process)

    def _reserve(self) -> None:
        """Count a start in, or refuse it by the session's or the daemon's limit."""
        if self._live >= self.quota.per_session:
            raise errors.limit_reached("process", self.quota.per_session, "per session")
        if self.quota.live >= self.quota.total:
            raise errors.limit_reached("process", self.quota.total, "in total")
        self._live += 1
        self.quota.live += 1

    def _unreserve(self) -> None:
        self._live -= 1
        self.quota.live -= 1

    def _release(self, process: ManagedProcess) -> None:
        """`process` closed (or its supervision ended): it no longer counts as live."""
        if process in self._holding:
            self._holding.discard(process)
            self._unreserve()

    @property
    def live(self) -> int:
        """Live processes of this session: starts in flight and processes not yet closed."""
        return self._live

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
        self._discard_output(process)

    def _discard_output(self, process: ManagedProcess) -> None:
        if process.spool is not None:
            process.spool.remove()
        if process.log.discarded:
            return
        process.log.discard()
        if process.log.written_bytes >= TRIM_AFTER_BYTES:
            self.quota.heap.request()
