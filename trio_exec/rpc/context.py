"""What a method handler is given: the connection's handshake state and the request's context.

Rules:
- `ConnectionState` is owned by one connection. Invariant: `acknowledged` implies `session`.
  A session is attached once per connection, through `attach` (an `initialize` in progress
  counts: a second one is refused while the first runs); a failed `initialize` may be retried.
- `CallContext` lives for one request: the request's form (`proto/dialect.py`), set by the
  dispatcher once the params are structured, and the work to run once the reply is queued
  (`after_reply`: publishing a process, opening a resumed session's notifications).
- Every handler has one signature, `Handler`: `(CallContext, params) -> result object`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs

from trio_exec.fs.handles import FileHandles
from trio_exec.fs.local import LocalFilesystem
from trio_exec.proto import codec, dialect, errors
from trio_exec.sandbox.policy import ServerPaths
from trio_exec.session.registry import SessionRegistry
from trio_exec.session.session import Attachment, Session


@attrs.define(eq=False)
class ConnectionState:
    """The handshake state of one connection."""

    label: str
    registry: SessionRegistry
    fs: LocalFilesystem
    #: Sends one encoded message to the client, at once if allowed (the connection's
    #: `Peer.send`).
    sink: Callable[[codec.Encoded, bool], Awaitable[None]]
    on_attached: Callable[[Attachment], None]
    session: Session | None = None
    attachment: Attachment | None = None
    acknowledged: bool = False
    _initializing: bool = False
    #: `fs/open` handles: the connection's own, closed when it ends (`close`).
    handles: FileHandles = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.handles = FileHandles(
            ServerPaths(cwd=self.fs.cwd, tmpdir=self.fs.tmpdir), self.fs.threads
        )

    @asynccontextmanager
    async def initializing(self) -> AsyncIterator[None]:
        """Held while an `initialize` runs: refuses a second one (or one after success)."""
        if self.session is not None or self._initializing:
            raise errors.InvalidRequest(errors.INITIALIZE_TWICE)
        self._initializing = True
        try:
            yield
        finally:
            self._initializing = False

    def attach(self, session: Session, attachment: Attachment) -> None:
        """`initialize` succeeded: this connection holds `session` until it ends."""
        self.session, self.attachment, self.acknowledged = session, attachment, False
        self.on_attached(attachment)

    def close(self) -> None:
        """The connection has ended: its file handles are closed."""
        self.handles.close_all()


@attrs.define(eq=False)
class CallContext:
    conn: ConnectionState
    #: The request's dialect and path form, set by the dispatcher once the params are structured.
    form: dialect.RequestForm = dialect.PLAIN
    _after_reply: list[Callable[[], None]] = attrs.field(factory=list)

    @property
    def session(self) -> Session:
        assert self.conn.session is not None
        return self.conn.session

    @property
    def attachment(self) -> Attachment:
        assert self.conn.attachment is not None
        return self.conn.attachment

    @property
    def fs(self) -> LocalFilesystem:
        return self.conn.fs

    def after_reply(self, callback: Callable[[], None]) -> None:
        self._after_reply.append(callback)

    def run_after_reply(self) -> None:
        callbacks, self._after_reply = self._after_reply, []
        for callback in callbacks:
            callback()


Handler = Callable[[CallContext, Any], Awaitable[Any]]
