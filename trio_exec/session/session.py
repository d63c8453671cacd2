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
- Notifications go to the current attachment's sink; while parked (or before the sink is
  opened) they are dropped, not queued: the client catches up with `process/read afterSeq`.
"""

from __future__ import annotations

import contextlib
import logging
import math

import attrs
import trio

from trio_exec.fs.watch import MissingWatches
from trio_exec.process.managed import ManagedProcess
from trio_exec.process.table import ProcessTable
from trio_exec.proto.codec import Encoded
from trio_exec.session.events import SessionEvents

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class Attachment:
    """One connection's hold on a session. `revoked` is set when another connection takes
    the session over; the long-polls run under `guard()` are then cancelled."""

    connection_label: str
    sink: trio.MemorySendChannel[Encoded] | None = None
    revoked: trio.Event = attrs.field(factory=trio.Event)
    _guarded: set[trio.CancelScope] = attrs.field(factory=set)

    def revoke(self) -> None:
        self.revoked.set()
        for scope in self._guarded:
            scope.cancel()

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
    _attachment: Attachment | None = None
    _detached_at: float | None = None
    _lifetime: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _expired: bool = False
    _processes: ProcessTable | None = None
    _watches: MissingWatches | None = None
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
        with self._lifetime:
            async with trio.open_nursery() as nursery:
                self._processes = ProcessTable(
                    nursery, self.notify, retention=self.retention, events=self.events
                )
                self._watches = MissingWatches(nursery, self.notify)
                task_status.started()
                await trio.sleep_forever()
        self._expired = True  # reached only by the park deadline or `expire()`
        self.events.session_expired()
        log.info("%s expired: not resumed within %ss, its processes killed", self.label, self.ttl)

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
        if previous is not None:
            self.events.session_taken_over()
            log.info("%s taken over by %s", self.label, attachment.connection_label)
            previous.revoke()

    def open_sink(self, attachment: Attachment, sink: trio.MemorySendChannel[Encoded]) -> None:
        if self._attachment is attachment:
            attachment.sink = sink

    def detach(self, attachment: Attachment) -> bool:
        """Park the session if `attachment` is still the current one; else do nothing."""
        if self._attachment is not attachment or self._expired:
            return False
        self._attachment = None
        self._detached_at = trio.current_time()
        self._lifetime.deadline = self._detached_at + self.ttl
        log.info("%s parked for %ss", self.label, self.ttl)
        return True

    def expire(self) -> None:
        """End the session now (the teardown wins)."""
        self._expired = True
        self._lifetime.cancel()

    async def notify(self, payload: bytes) -> None:
        """Send to the attached connection, or drop while parked. Never raises for a gone peer."""
        attachment = self._attachment
        if attachment is None or attachment.sink is None:
            return
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await attachment.sink.send(payload)

    def list_processes(self) -> list[ManagedProcess]:
        return self.processes.processes()
