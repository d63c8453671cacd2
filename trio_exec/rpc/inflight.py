"""What one connection has in flight, and when its reader stops reading the socket.

A request is in flight from the moment the reader takes it off the socket until its reply has
been written to the socket (or the connection ended). Its reply's bytes are in flight from the
moment the reply is queued for the writer until the writer has written them.

Rules:
- The reader takes the next message only while fewer than `pause_requests` requests and fewer
  than `pause_bytes` reply bytes are in flight; at either bound it waits until both are below
  again. Nothing is refused, answered early or dropped: the socket is just not read, so TCP
  slows the client down, as a connection that does not read slows a child's output down.
- A reply larger than `pause_bytes` is still queued and written whole; reading resumes once it
  is written.
- Notifications are not counted: the sink channel's capacity bounds them, and a full channel
  blocks the process's output pump (then the pipe blocks the child).
- Pings and Close are not affected: the pinger still pings and a peer that neither reads nor
  answers is still dropped at the ping timeout.

Memory: a connection holds at most `pause_bytes` of replies plus the replies of the requests
that were already running when the bound was reached, so at most
`pause_bytes + pause_requests * its largest reply`.
"""

from __future__ import annotations

import attrs
import trio

from trio_exec.proto.codec import Encoded

#: Reading a connection pauses while this many of its requests are in flight...
DEFAULT_READ_PAUSE_REQUESTS = 16
#: ...or while this many bytes of its replies wait to be written.
DEFAULT_READ_PAUSE_BYTES = 16 * 1024 * 1024


@attrs.frozen
class Reply:
    """A reply on its way to the writer; the writer hands it back to `InFlight.written`."""

    payload: Encoded
    size: int


@attrs.define(eq=False)
class InFlight:
    """One connection's requests and reply bytes in flight.

    Invariants: `requests` and `reply_bytes` are never negative; `_changed` is replaced each
    time either falls, so a reader waiting on the old event is woken."""

    pause_requests: int = DEFAULT_READ_PAUSE_REQUESTS
    pause_bytes: int = DEFAULT_READ_PAUSE_BYTES
    requests: int = 0
    reply_bytes: int = 0
    _changed: trio.Event = attrs.field(factory=trio.Event)

    @property
    def at_bound(self) -> bool:
        return self.requests >= self.pause_requests or self.reply_bytes >= self.pause_bytes

    async def wait_for_room(self) -> None:
        """Return once both counts are below their bounds (at once if they are).
        Cancellation: nothing to undo."""
        while self.at_bound:
            await self._changed.wait()

    def request_read(self) -> None:
        self.requests += 1

    def reply_queued(self, payload: Encoded) -> Reply:
        """Count the reply's bytes; the result goes to the writer."""
        reply = Reply(payload, len(payload))
        self.reply_bytes += reply.size
        return reply

    def written(self, reply: Reply) -> None:
        """The writer wrote `reply`: its request and its bytes leave."""
        self.reply_bytes -= reply.size
        self.finished()

    def dropped(self, reply: Reply | None) -> None:
        """The request ended without its reply being written (the connection is ending)."""
        if reply is not None:
            self.reply_bytes -= reply.size
        self.finished()

    def finished(self) -> None:
        self.requests -= 1
        self._changed.set()
        self._changed = trio.Event()
