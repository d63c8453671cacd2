"""One WebSocket connection of the client: one reader, one writer, the calls in flight.

Rules:
- The writer is the only task that sends frames; callers queue (call, frame) pairs. A call is
  marked `sent` just before its frame is handed to the socket, so after a drop the client
  knows which requests may have reached the server.
- The reader files replies into their calls by id and hands notifications to `on_notification`
  synchronously, in arrival order.
- When the link dies (peer close, broken stream, missing pong, `kill()`), every call in flight
  and every later `request()` fails at once with `LinkLost`; nothing waits forever.
- A request whose message is over `max_message_size` is refused before it is queued
  (`RequestTooLarge`, nothing sent). When the server closes with 1009 (message too big), the
  largest call in flight that was sent is the one it refused (the refused message is in
  flight, and anything at least as large is over the limit too): it fails with
  `RequestTooLarge`, never `LinkLost`, so nobody sends it again.

Cancellation: cancelling `request()` abandons the call (its late reply is ignored).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio_websocket

from trio_exec.client.errors import RequestTooLarge
from trio_exec.proto import codec
from trio_exec.proto.errors import error_from_wire

log = logging.getLogger(__name__)

WRITE_QUEUE = 64
CLOSE_TIMEOUT = 1.0
MESSAGE_TOO_BIG = 1009
_labels = itertools.count(1)

#: A test hook seeing every decoded inbound message first; returning True drops the message.
Tap = Callable[[codec.Message], bool]


class LinkLost(Exception):
    """The link died before the call completed; `sent` says whether its frame left."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


@attrs.define(eq=False)
class _Call:
    method: str
    #: Bytes of its message.
    size: int
    done: trio.Event = attrs.field(factory=trio.Event)
    sent: bool = False
    abandoned: bool = False
    result: Any = None
    error: BaseException | None = None


@attrs.define(eq=False)
class Link:
    """Invariant: `_calls` holds exactly the calls awaiting a reply on this link; once `dead`
    is set it is empty and stays empty."""

    ws: trio_websocket.WebSocketConnection
    on_notification: Callable[[str, Any], None]
    ping_interval: float | None = None
    ping_timeout: float = 20.0
    tap: Tap | None = None
    #: Largest request message sent, in bytes (None: no limit).
    max_message_size: int | None = None
    label: str = attrs.field(factory=lambda: f"link-{next(_labels)}")
    dead: trio.Event = attrs.field(factory=trio.Event)
    #: Set once `run` has returned and the socket is closed.
    finished: trio.Event = attrs.field(factory=trio.Event)
    reason: str = "connection closed"
    close_code: int | None = None
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _calls: dict[int, _Call] = attrs.field(factory=dict)
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _queue: tuple[trio.MemorySendChannel[tuple[_Call | None, bytes]],
                  trio.MemoryReceiveChannel[tuple[_Call | None, bytes]]] = attrs.field(
        factory=lambda: trio.open_memory_channel[tuple[_Call | None, bytes]](WRITE_QUEUE)
    )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the link until it dies. Cancellation: the link dies, the socket is closed."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer)
                    if self.ping_interval:
                        nursery.start_soon(self._pinger)
                    task_status.started()
                    await self._reader()
                    nursery.cancel_scope.cancel()
        finally:
            self._die(self.reason)
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await self.ws.aclose()
            self.finished.set()

    def kill(self, reason: str) -> None:
        """End the link now (used by the client and by tests breaking a connection on cue)."""
        self.reason = reason
        self._scope.cancel()
        self._die(reason)

    async def request(self, method: str, params: Any) -> Any:
        """Send one request and return its JSON result. Raises the `RpcError` of an error
        reply, or `LinkLost`."""
        if self.dead.is_set():
            raise LinkLost(self.reason, sent=False)
        request_id = next(self._ids)
        frame = codec.encode_request(request_id, method, params)
        limit = self.max_message_size
        if limit is not None and len(frame) > limit:
            raise RequestTooLarge(method, len(frame), limit)
        call = _Call(method, len(frame))
        self._calls[request_id] = call
        try:
            try:
                await self._queue[0].send((call, frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise LinkLost(self.reason, sent=False) from None
            await call.done.wait()
        finally:
            self._calls.pop(request_id, None)
            call.abandoned = not call.done.is_set()
        if call.error is not None:
            raise call.error
        return call.result

    async def notify(self, method: str, params: Any) -> None:
        try:
            await self._queue[0].send((None, codec.encode_notification(method, params)))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise LinkLost(self.reason, sent=False) from None

    def _die(self, reason: str) -> None:
        if self.dead.is_set():
            return
        log.info("%s lost: %s", self.label, reason)
        self.dead.set()
        self._queue[0].close()
        self._queue[1].close()
        calls, self._calls = self._calls, {}
        pending = [call for call in calls.values() if not call.done.is_set()]
        refused = None
        if self.close_code == MESSAGE_TOO_BIG:
            refused = max((call for call in pending if call.sent), key=lambda call: call.size,
                          default=None)
        for call in pending:  # a call already done had its reply filed; its caller runs next
            if call is refused:
                call.error = RequestTooLarge(call.method, call.size, None)
            else:
                call.error = LinkLost(reason, sent=call.sent)
            call.done.set()

    async def _reader(self) -> None:
        while True:
            try:
                frame = await self.ws.get_message()
            except trio_websocket.ConnectionClosed as closed:
                self._closed_by(closed)
                return
            try:
                message = codec.decode(frame)
            except codec.DecodeError as bad:
                log.warning("%s: undecodable frame from server: %s", self.label, bad.error.message)
                continue
            if self.tap is not None and self.tap(message):
                continue
            if isinstance(message, codec.Response):
                self._file_reply(message)
            elif isinstance(message, codec.Notification):
                self.on_notification(message.method, message.params)
            else:
                log.warning("%s: ignored a request from the server: %s", self.label, message.method)

    def _closed_by(self, closed: trio_websocket.ConnectionClosed) -> None:
        reason = closed.reason
        if reason is not None:
            self.close_code = reason.code
            said = f": {reason.reason}" if reason.reason else ""
            self.reason = f"connection closed ({reason.code} {reason.name}{said})"

    def _file_reply(self, reply: codec.Response) -> None:
        call = self._calls.get(reply.id) if isinstance(reply.id, int) else None
        if call is None:
            log.info("%s: reply for unknown id %r ignored", self.label, reply.id)
            return
        if reply.error is not None:
            error = reply.error if isinstance(reply.error, dict) else {}
            code = error.get("code")
            text = error.get("message")
            call.error = error_from_wire(
                code if isinstance(code, int) else -32603,
                text if isinstance(text, str) else repr(reply.error),
            )
        else:
            call.result = reply.result
        call.done.set()

    async def _writer(self) -> None:
        try:
            async for call, frame in self._queue[1]:
                if call is not None:
                    if call.abandoned:
                        continue  # cancelled before it left: never send it
                    call.sent = True
                await self.ws.send_message(frame.decode())
        except trio_websocket.ConnectionClosed as closed:
            self._closed_by(closed)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self._scope.cancel()

    async def _pinger(self) -> None:
        assert self.ping_interval is not None
        while True:
            await trio.sleep(self.ping_interval)
            with trio.move_on_after(self.ping_timeout) as waited:
                try:
                    await self.ws.ping()
                except trio_websocket.ConnectionClosed:
                    return
            if waited.cancelled_caught:
                self.reason = f"no pong from the server within {self.ping_timeout}s"
                self._scope.cancel()
                return
