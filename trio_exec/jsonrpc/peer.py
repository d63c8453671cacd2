"""One JSON-RPC peer over a `MessageStream`: a reader, a writer, a pinger, the calls in flight.

The daemon's connection and the client's link each run one; what differs between them is
passed in (what a request, a notification or an undecodable message does; whether reading
waits for room first; whether written items are tracked).

Rules:
- Ownership: `run` owns the reader, the writer and the pinger; it returns when any of them
  ends the peer (the stream's end, a write failure, a missing pong, `cancel()`), with the
  others cancelled. Closing the stream is the owner's last step (`aclose`), after its own
  clean-up.
- One write at a time, in the order messages were given: `send(item)` writes the item itself,
  in the calling task, when the writer is idle (waiting on an empty outbox) and no other
  `send` is writing; otherwise it puts the item into `outbox`, as everyone may, and the writer
  writes it after what came before (it waits for a `send` still writing). Writing at once
  saves the hand-off to the writer, a scheduler pass for every reply and notification. The
  writer joins what is already queued into one write up to `batch_bytes` (0: one message per
  write). A `Tracked` item is offered to `leaving` just before its write (False: dropped
  unsent) and to `written` once written. A write that fails ends the peer, whoever wrote.
- Closing the outbox's send side (`close_outbox`) lets the writer drain what is queued and then
  end the peer; `stop_sending` closes both sides (nothing queued leaves). `send` refuses
  (`ClosedResourceError`) once either was called, and (`BrokenResourceError`) once the peer
  has ended.
- The reader waits for `before_read` (the daemon's read pause) before each message, decodes
  it, offers it to `tap` (a test hook; True drops it), and routes it: a request to
  `on_request`, a notification to `on_notification`, a reply into `calls` (a reply for no
  pending id is logged and ignored). It never waits for a request to be handled.
- The pinger probes the peer every `ping_interval` seconds (streams that can be probed only);
  no answer within `ping_timeout` ends the peer with `reason` saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import trio

from trio_exec.jsonrpc.calls import Calls
from trio_exec.jsonrpc.stream import MessageStream, StreamClosed
from trio_exec.proto import codec

log = logging.getLogger(__name__)


class Tracked(Protocol):
    """An outbox item the owner follows to the stream (a reply, a call's request)."""

    @property
    def payload(self) -> codec.Encoded: ...


Outboxed = codec.Encoded | Tracked

#: A test hook seeing every decoded inbound message first; returning True drops the message.
Tap = Callable[[codec.Message], bool]


def payload_of(item: Outboxed) -> codec.Encoded:
    return item if isinstance(item, (bytes, codec.Pieces)) else item.payload


async def _no_wait() -> None:
    pass


def _always(item: Tracked) -> bool:
    return True


def _nothing(item: Tracked) -> None:
    pass


@attrs.define(eq=False)
class Peer:
    """Invariants: `reason` says why the peer ended once it has; `close_code` is the Close
    code the other end sent, when it sent one."""

    stream: MessageStream
    label: str
    #: What the other end is called in `reason` ("client", "server").
    other_end: str
    on_request: Callable[[codec.Request], None]
    on_notification: Callable[[codec.Notification], None]
    on_bad_message: Callable[[codec.DecodeError], Awaitable[None]]
    before_read: Callable[[], Awaitable[None]] = _no_wait
    leaving: Callable[[Tracked], bool] = _always
    written: Callable[[Tracked], None] = _nothing
    tap: Tap | None = None
    ping_interval: float | None = None
    ping_timeout: float = 20.0
    batch_bytes: int = 0
    outbox_capacity: int = 64
    calls: Calls = attrs.field(factory=Calls)
    reason: str = "connection closed"
    close_code: int | None = None
    outbox: trio.MemorySendChannel[Outboxed] = attrs.field(init=False)
    _queued: trio.MemoryReceiveChannel[Outboxed] = attrs.field(init=False)
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    #: Held by whoever writes to the stream: the writer or a `send` writing at once.
    _write_lock: trio.StrictFIFOLock = attrs.field(factory=trio.StrictFIFOLock)
    _outbox_closed: bool = False
    _ended: bool = False

    def __attrs_post_init__(self) -> None:
        self.outbox, self._queued = trio.open_memory_channel[Outboxed](self.outbox_capacity)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the peer until it ends (see the rules). Cancellation: it ends."""
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, nursery.cancel_scope)
                if self.ping_interval and self.stream.can_ping:
                    nursery.start_soon(self._pinger, nursery.cancel_scope)
                task_status.started()
                await self._reader()
                nursery.cancel_scope.cancel()

    def cancel(self) -> None:
        """End the peer now: `run` returns."""
        self._scope.cancel()

    def stop_sending(self) -> None:
        """Nothing more is written: both sides of the outbox are closed."""
        self._outbox_closed = True
        self.outbox.close()
        self._queued.close()

    def close_outbox(self) -> None:
        """Nothing more is accepted; the writer writes what is queued, then ends the peer."""
        self._outbox_closed = True
        self.outbox.close()

    async def send(self, item: Outboxed, at_once: bool = True) -> None:
        """Write `item` after everything given before it (see the rules); not `at_once`: always
        through the outbox. Raises trio's `ClosedResourceError` once the outbox is closed,
        `BrokenResourceError` once the peer has ended. Cancellation: a write cut short ends
        the peer (the stream is torn)."""
        if self._outbox_closed:
            raise trio.ClosedResourceError("the outbox is closed")
        if self._ended:
            raise trio.BrokenResourceError("the peer has ended")
        idle = self._queued.statistics()
        if (not at_once or idle.tasks_waiting_receive != 1 or idle.current_buffer_used
                or self._write_lock.locked()):
            await self.outbox.send(item)
            return
        if not isinstance(item, (bytes, codec.Pieces)) and not self.leaving(item):
            await trio.lowlevel.checkpoint()
            return
        self._write_lock.acquire_nowait()  # free (checked above): no scheduler pass for it
        try:
            sent = await self.stream.send([payload_of(item)])
        except StreamClosed as closed:
            self._closed_by(closed)
            self._end()
            raise trio.BrokenResourceError(str(closed)) from None
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._end()
            raise
        finally:
            self._write_lock.release()
        if not sent:
            self._end()
            raise trio.ClosedResourceError("the stream is closing")
        if not isinstance(item, (bytes, codec.Pieces)):
            self.written(item)

    def _end(self) -> None:
        self._ended = True
        self._scope.cancel()

    async def aclose(self, within: float, code: int = 1000, reason: str | None = None) -> None:
        """Close the stream, waiting at most `within` seconds. Cancellation: shielded."""
        with trio.CancelScope(shield=True), trio.move_on_after(within):
            await self.stream.aclose(code, reason)

    def _closed_by(self, closed: StreamClosed) -> None:
        if closed.reason is not None:
            self.reason = closed.reason
        if closed.code is not None:
            self.close_code = closed.code

    async def _reader(self) -> None:
        while True:
            await self.before_read()
            try:
                message = codec.decode(await self.stream.receive())
            except StreamClosed as closed:
                log.info("%s closed by peer: %s", self.label, closed)
                self._closed_by(closed)
                return
            except codec.DecodeError as bad:
                await self.on_bad_message(bad)
                continue
            if self.tap is not None and self.tap(message):
                continue
            if isinstance(message, codec.Request):
                self.on_request(message)
            elif isinstance(message, codec.Notification):
                self.on_notification(message)
            elif not self.calls.file(message):
                log.info("%s: reply for unknown id %r ignored", self.label, message.id)

    async def _writer(self, scope: trio.CancelScope) -> None:
        """Write what is queued, batching what is already waiting; ends the peer when the
        outbox is closed and drained, or the stream fails."""
        try:
            async with self._queued:
                async for item in self._queued:
                    batch: list[Outboxed] = []
                    size = 0
                    while True:
                        if isinstance(item, (bytes, codec.Pieces)) or self.leaving(item):
                            batch.append(item)
                            size += len(payload_of(item))
                        if size >= self.batch_bytes:
                            break
                        try:
                            item = self._queued.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    del item  # a large response is alive once, in the batch
                    if not batch:
                        continue
                    async with self._write_lock:
                        sent = await self.stream.send([payload_of(queued) for queued in batch])
                    if not sent:
                        break
                    for queued in batch:
                        if not isinstance(queued, (bytes, codec.Pieces)):
                            self.written(queued)
                    del batch
        except StreamClosed as closed:
            self._closed_by(closed)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._ended = True
        scope.cancel()

    async def _pinger(self, scope: trio.CancelScope) -> None:
        assert self.ping_interval is not None
        while True:
            await trio.sleep(self.ping_interval)
            with trio.move_on_after(self.ping_timeout) as waited:
                try:
                    await self.stream.ping()
                except StreamClosed:
                    return
            if waited.cancelled_caught:
                log.warning("%s: no pong within %ss, dropping the peer", self.label, self.ping_timeout)
                self.reason = f"no pong from the {self.other_end} within {self.ping_timeout}s"
                scope.cancel()
                return
