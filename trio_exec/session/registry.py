"""The session registry: the only map of live sessions, in a nursery that outlives connections.

Rules:
- Session ids are random UUID v4 from the operating system's CSPRNG (`secrets`; the only
  secret protecting a session without auth). Logs name a session by its label, the first 8
  hex digits (`sess-3f2a1b9c`), never by its full id.
- At most `max_sessions` sessions exist, attached or parked: an `initialize` that would create
  one more is refused with -32603 `session limit reached: N sessions` (a resume is not).
- `resume()` applies the TTL rule (`Session.is_expired`) at resume time: a session found too
  late is expired on the spot and reported unknown, so the teardown wins at the boundary.
- A session leaves the map when its task ends (expiry or shutdown), never earlier.

Cancellation: cancelling `run` ends every session, killing and reaping their processes.
"""

from __future__ import annotations

import logging
import secrets
import uuid

import attrs
import trio

from trio_exec.process.cgroup import Containment
from trio_exec.process.limits import ProcessQuota
from trio_exec.proto import errors
from trio_exec.session.events import SessionEvents
from trio_exec.session.session import Attachment, Session

log = logging.getLogger(__name__)

DEFAULT_MAX_SESSIONS = 1024


def new_session_id() -> str:
    """A random UUID v4 from the OS CSPRNG."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


@attrs.define(eq=False)
class SessionRegistry:
    ttl: float
    retention: float
    containment: Containment | None = None
    max_sessions: int = DEFAULT_MAX_SESSIONS
    quota: ProcessQuota = attrs.field(factory=ProcessQuota)
    events: SessionEvents = attrs.field(factory=SessionEvents)
    _nursery: trio.Nursery | None = None
    _sessions: dict[str, Session] = attrs.field(factory=dict)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        return list(self._sessions.values())

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    async def create(self, attachment: Attachment) -> Session:
        assert self._nursery is not None, "registry not running"
        if len(self._sessions) >= self.max_sessions:
            raise errors.limit_reached("session", self.max_sessions, "sessions")
        session = Session(
            new_session_id(), ttl=self.ttl, retention=self.retention, quota=self.quota,
            containment=self.containment, events=self.events,
        )
        self._sessions[session.session_id] = session
        await self._nursery.start(self._run_session, session)
        session.attach(attachment)
        self.events.session_created()
        log.info("%s created for %s", session.label, attachment.connection_label)
        return session

    def resume(self, session_id: str, attachment: Attachment) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise errors.unknown_session(session_id)
        if session.is_expired(trio.current_time()):
            session.expire()
            raise errors.unknown_session(session_id)
        session.attach(attachment)
        self.events.session_resumed()
        log.info("%s resumed by %s", session.label, attachment.connection_label)
        return session

    async def _run_session(
        self, session: Session, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await session.run(task_status=task_status)
        finally:
            if self._sessions.get(session.session_id) is session:
                del self._sessions[session.session_id]
