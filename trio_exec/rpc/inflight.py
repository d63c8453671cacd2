"""What one connection has in flight, and when its reader stops reading the socket.

A request is in flight from the moment the reader takes it off the socket until its reply has
been written to the socket (or the connection ended). Its reply's bytes are in flight from the
moment the reply is queued for the writer until the writer has written them.

Rules:
- The reader takes the next message only while fewer than `pause_requests` requests and fewer
  than `pause_bytes` reply bytes are in flight; at either bound it waits until both are below
  again. Nothing is refused, answered early or dropped: the socket is just not read, so TCP
  slows the client down, as a connection that does not read slows a child's output down.
- A long-poll (`process/read` with a positive `waitMs`) does not count toward `pause_requests`
  while it waits, only its reply's bytes do once it is answered. Waiting for an event costs
  neither memory nor the loop, and a paused reader would also stop the pongs (trio-websocket's
  reader stops at its full queue): a client holding more long-polls than the pause bound would
  be dropped by the ping timeout although it reads everything.
- Long-polls and everything else are bounded by `max_pending` instead: the requests read and
  not yet answered. A request beyond it is answered at once with -32603 `pending request limit
  reached: N per connection`; it is not run, and it counts toward the pause like any answered
  request until that reply is written (a client that floods without reading is still paused).
  With the defaults (16 below 256) the pause is what a client sending ordinary requests meets;
  only long-polls can reach the pending limit.
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
from trio_exec.proto.methods import PROCESS_READ

#: Reading a connection pauses while this many of its requests are in flight...
DEFAULT_READ_PAUSE_REQUESTS = 16
#: ...or while this many bytes of its replies wait to be written.
DEFAULT_READ_PAUSE_BYTES = 16 * 1024 * 1024
#: Requests of one connection read and not yet answered, long-polls included.
DEFAULT_MAX_PENDING_REQUESTS = 256


def is_long_poll(method: str, params: object) -> bool:
    """A `process/read` that may wait (judged on the raw params; a bad `waitMs` fails fast)."""
    if method != PROCESS_READ or not isinstance(params, dict):
        return False
    wait_ms = params.get("waitMs")
    return isinstance(wait_ms, int) and not isinstance(wait_ms, bool) and wait_ms > 0


@attrs.define(eq=False)
class Slot:
    """One request read: whether it runs (`admitted`) and whether it counts toward the pause
    now (`counted`: every request but a waiting long-poll)."""

    admitted: bool
    counted: bool
    answered: bool = False


@attrs.frozen
class Reply:
    """A reply on its way to the writer; the writer hands it back to `InFlight.written`."""

    payload: Encoded
    size: int
    slot: Slot


@attrs.define(eq=False)
class InFlight:
    """One connection's requests and reply bytes in flight.

    Invariants: `requests`, `pending` and `reply_bytes` are never negative; `requests` counts
    the slots with `counted`, `pending` the admitted slots not yet `answered`; `_changed` is
    replaced each time `requests` or `reply_bytes` falls, so a reader waiting on the old event
    is woken."""

    pause_requests: int = DEFAULT_READ_PAUSE_REQUESTS
    pause_bytes: int = DEFAULT_READ_PAUSE_BYTES
    max_pending: int = DEFAULT_MAX_PENDING_REQUESTS
    requests: int = 0
    pending: int = 0
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

    def request_read(self, *, long_poll: bool = False) -> Slot:
        """Count a request just read. Beyond `max_pending` it is not admitted: the caller
        answers it with the limit's error."""
        admitted = self.pending < self.max_pending
        slot = Slot(admitted=admitted, counted=not (admitted and long_poll))
        if admitted:
            self.pending += 1
        if slot.counted:
            self.requests += 1
        return slot

    def _answered(self, slot: Slot) -> None:
        if slot.admitted and not slot.answered:
            self.pending -= 1
        slot.answered = True

    def reply_queued(self, slot: Slot, payload: Encoded) -> Reply:
        """Count the reply's bytes (and a long-poll's request from now on); the result goes
        to the writer."""
        self._answered(slot)
        if not slot.counted:
            slot.counted = True
            self.requests += 1
        reply = Reply(payload, len(payload), slot)
        self.reply_bytes += reply.size
        return reply

    def written(self, reply: Reply) -> None:
        """The writer wrote `reply`: its request and its bytes leave."""
        self.reply_bytes -= reply.size
        self._finished(reply.slot)

    def dropped(self, slot: Slot, reply: Reply | None) -> None:
        """The request ended without its reply being written (the connection is ending)."""
        self._answered(slot)
        if reply is not None:
            self.reply_bytes -= reply.size
        self._finished(slot)

    def _finished(self, slot: Slot) -> None:
        if slot.counted:
            self.requests -= 1
            slot.counted = False
        self._changed.set()
        self._changed = trio.Event()
