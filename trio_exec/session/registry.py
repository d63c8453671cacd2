"""The session registry: the only map of live sessions, in a nursery that outlives connections.

Rules:
- Session ids are random UUID v4 (the only secret protecting a session without auth).
- `resume()` applies the TTL rule (`Session.is_expired`) at resume time: a session found too
  late is expired on the spot and reported unknown, so the teardown wins at the boundary.
- A session leaves the map when its task ends (expiry or shutdown), never earlier.

Cancellation: cancelling `run` ends every session, killing and reaping their processes.
"""

from __future__ import annotations

import logging
import uuid

import attrs
import trio

from trio_exec.proto import errors
from trio_exec.session.events import SessionEvents
from trio_exec.session.session import Attachment, Session

log = logging.getLogger(__name__)


@attrs.define(eq=False)
class SessionRegistry:
    ttl: float
    retention: float
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
        session = Session(
            str(uuid.uuid4()), ttl=self.ttl, retention=self.retention, events=self.events
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
