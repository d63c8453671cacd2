"""A session: the owner of a process table, which outlives the connections attached to it.

States and transitions (the only ones there are):

    attached --detach(current token)--> parked(deadline = now + ttl)
    parked   --attach-->                attached (deadline cleared)
    attached --attach (takeover)-->     attached to the new connection; the old token revoked
    parked   --deadline / expire()-->   ended (processes killed and reaped, id forgotten)
    any      --shutdown-->              ended

Rules:
- At most one attachment at a time. `attach()` returns the token; `detach(token)` with a token
  that is no longer current does nothing, so a late cleanup of an old connection can never
  detach its successor.
- The park deadline is the deadline of the session's lifetime `CancelScope`: the clock decides,
  with nothing polling. Whether a resume is too late is decided by `is_expired(now)` alone (the
  one rule, used at resume time), so a resume at or after the deadline fails even if the
  teardown has not run yet.
- Events (`SessionEvent`: its processes' and its watch's) go to the current attachment's
  sink, which sends them as notifications (the sink comes from `rpc/`, which owns the wire
  form); while parked (or before the sink is opened) they are dropped, not queued: the client
  catches up with `process/read afterSeq`.

Test events (trio-websocket's `_for_testing_*` style; nothing in the daemon waits on them):
`_for_testing_parked` is set exactly while the session is parked, `_for_testing_ended` once
its lifetime is over and every process is reaped.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import Protocol

import attrs
import trio

from trio_exec.fs.watch import MissingChanged, MissingWatches
from trio_exec.process.cgroup import Containment
from trio_exec.process.events import ProcessEvent
from trio_exec.process.limits import ProcessQuota
from trio_exec.process.managed import ManagedProcess
from trio_exec.process.table import ProcessTable
from trio_exec.session.events import SessionEvents

log = logging.getLogger(__name__)

#: What a session reports to its attached connection.
SessionEvent = ProcessEvent | MissingChanged


class EventSink(Protocol):
    """Where an attached connection takes the session's events (`rpc/notifications.py`).
    `send` raises `trio.BrokenResourceError`/`trio.ClosedResourceError` once the peer is gone."""

    async def send(self, event: SessionEvent) -> None: ...


@attrs.define(eq=False)
class Attachment:
    """One connection's hold on a session. `revoked` is set when another connection takes
    the session over; the long-polls run under `guard()` are then cancelled, and `on_revoke`
    (the connection's, when it set one) is called, once."""

    connection_label: str
    sink: EventSink | None = None
    revoked: trio.Event = attrs.field(factory=trio.Event)
    on_revoke: Callable[[], None] | None = None
    _guarded: set[trio.CancelScope] = attrs.field(factory=set)

    def revoke(self) -> None:
        if self.revoked.is_set():
            return
        self.revoked.set()
        for scope in self._guarded:
            scope.cancel()
        if self.on_revoke is not None:
            self.on_revoke()

    def guard(self) -> trio.CancelScope:
        """A scope that the takeover cancels; the caller checks `revoked` after it."""
        scope = trio.CancelScope()
        if self.revoked.is_set():
            scope.cancel()
        self._guarded.add(scope)
        return scope

    def unguard(self, scope: trio.CancelScope) -> None:
        self._guarded.discard(scope)


@attrs.define(eq=False)
class Session:
    """Invariants: `_detached_at` is None exactly while attached; `_lifetime.deadline` is
    `_detached_at + ttl` while parked and +inf otherwise; `processes` exists once `run` started."""

    session_id: str
    ttl: float
    retention: float
    #: Whether (and where) each process gets a cgroup of its own (`process/cgroup.py`).
    containment: Containment | None = None
    #: The daemon's process limits and retention budget, shared by every session.
    quota: ProcessQuota = attrs.field(factory=ProcessQuota)
    _attachment: Attachment | None = None
    _detached_at: float | None = None
    _lifetime: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _expired: bool = False
    _processes: ProcessTable | None = None
    _watches: MissingWatches | None = None
    _for_testing_parked: trio.Event = attrs.field(factory=trio.Event)
    _for_testing_ended: trio.Event = attrs.field(factory=trio.Event)
    events: SessionEvents = attrs.field(factory=SessionEvents)

    @property
    def label(self) -> str:
        return f"sess-{self.session_id[:8]}"

    @property
    def processes(self) -> ProcessTable:
        assert self._processes is not None, "session not running"
        return self._processes

    @property
    def watches(self) -> MissingWatches:
        """The session's `fs/watchMissing` watches (they end with the session)."""
        assert self._watches is not None, "session not running"
        return self._watches

    @property
    def attachment(self) -> Attachment | None:
        return self._attachment

    @property
    def ended(self) -> bool:
        return self._expired

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The session's lifetime. Ends at its park deadline, `expire()`, or cancellation;
        either way every process is killed and reaped before it returns."""
        try:
            with self._lifetime:
                async with trio.open_nursery() as nursery:
                    self._processes = ProcessTable(
                        nursery, self.notify, retention=self.retention, quota=self.quota,
                        containment=self.containment, events=self.events,
                    )
                    self._watches = MissingWatches(nursery, self.notify)
                    task_status.started()
                    await trio.sleep_forever()
            self._expired = True  # reached only by the park deadline or `expire()`
            self.events.session_expired()
            log.info("%s expired: not resumed within %ss, its processes killed", self.label,
                     self.ttl)
        finally:
            log.info("%s ended", self.label)  # by expiry, `expire()` or the daemon's end
            self._for_testing_ended.set()

    # --- attachment ------------------------------------------------------------------------

    def is_expired(self, now: float) -> bool:
        """The TTL rule: a parked session is gone at detach time + ttl, exactly."""
        if self._expired:
            return True
        return self._detached_at is not None and now >= self._detached_at + self.ttl

    def attach(self, attachment: Attachment) -> None:
        """Make `attachment` the only one (revoking a previous one) and cancel the teardown."""
        previous = self._attachment
        self._attachment = attachment
        self._detached_at = None
        self._lifetime.deadline = math.inf
        if self._for_testing_parked.is_set():
            self._for_testing_parked = trio.Event()
        if previous is not None:
            self.events.session_taken_over()
            log.info("%s taken over by %s", self.label, attachment.connection_label)
            previous.revoke()

    def open_sink(self, attachment: Attachment, sink: EventSink) -> None:
        if self._attachment is attachment:
            attachment.sink = sink

    def detach(self, attachment: Attachment) -> bool:
        """Park the session if `attachment` is still the current one; else do nothing."""
        if self._attachment is not attachment or self._expired:
            return False
        self._attachment = None
        self._detached_at = trio.current_time()
        self._lifetime.deadline = self._detached_at + self.ttl
        self._for_testing_parked.set()
        log.info("%s parked for %ss", self.label, self.ttl)
        return True

    def expire(self) -> None:
        """End the session now (the teardown wins)."""
        self._expired = True
        self._lifetime.cancel()

    async def notify(self, event: SessionEvent) -> None:
        """Send to the attached connection, or drop while parked. Never raises for a gone peer."""
        attachment = self._attachment
        if attachment is None or attachment.sink is None:
            return
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await attachment.sink.send(event)

    def list_processes(self) -> list[ManagedProcess]:
        return self.processes.processes()
