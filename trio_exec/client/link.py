"""One connection of the client: a `Peer` (`jsonrpc/peer.py`) and the calls it has in flight.

Rules:
- Callers queue their requests; the peer's writer is the only task that writes. A call is
  marked `sent` just before its message is handed to the stream, so after a drop the client
  knows which requests may have reached the server (`jsonrpc/calls.py`).
- The reader files replies into their calls by id and hands notifications to `on_notification`
  synchronously, in arrival order.
- When the link dies (peer close, broken stream, missing pong, `kill()`), every call in flight
  and every later `request()` fails at once with `LinkLost`; nothing waits forever.
- A request whose message is over `max_message_size` is refused before it is queued
  (`RequestTooLarge`, nothing sent). When the server closes with 1009 (message too big), the
  largest call in flight that was sent is the one it refused (the refused message is in
  flight, and anything at least as large is over the limit too): it fails with
  `RequestTooLarge`, never `LinkLost`, so nobody sends it again.
- The transport is a WebSocket (given as a trio-websocket connection) or any
  `MessageStream`, such as the lines of a `--via` command's stdin and stdout.

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
from trio_exec.jsonrpc import calls as calls_
from trio_exec.jsonrpc.calls import Call, Outgoing
from trio_exec.jsonrpc.peer import Peer, Tap, Tracked
from trio_exec.jsonrpc.stream import MessageStream
from trio_exec.jsonrpc.websocket import WebSocketMessages
from trio_exec.proto import codec

log = logging.getLogger(__name__)

__all__ = ["CLOSE_TIMEOUT", "Link", "LinkLost", "Tap"]

WRITE_QUEUE = 64
CLOSE_TIMEOUT = 1.0
MESSAGE_TOO_BIG = 1009
_labels = itertools.count(1)


class LinkLost(Exception):
    """The link died before the call completed; `sent` says whether its frame left."""

    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


@attrs.define(eq=False)
class Link:
    """Invariant: once `dead` is set no call is pending on this link and none is accepted."""

    transport: trio_websocket.WebSocketConnection | MessageStream
    on_notification: Callable[[str, Any], None]
    ping_interval: float | None = None
    ping_timeout: float = 20.0
    tap: Tap | None = None
    #: Largest request message sent, in bytes (None: no limit).
    max_message_size: int | None = None
    label: str = attrs.field(factory=lambda: f"link-{next(_labels)}")
    dead: trio.Event = attrs.field(factory=trio.Event)
    #: Set once `run` has returned and the stream is closed.
    finished: trio.Event = attrs.field(factory=trio.Event)
    _peer: Peer = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        transport = self.transport
        stream = (
            transport if isinstance(transport, MessageStream) else WebSocketMessages(transport)
        )
        self._peer = Peer(
            stream,
            self.label,
            "server",
            on_request=self._on_request,
            on_notification=lambda note: self.on_notification(note.method, note.params),
            on_bad_message=self._on_bad_message,
            leaving=self._leaving,
            tap=self.tap,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            outbox_capacity=WRITE_QUEUE,
        )

    @property
    def reason(self) -> str:
        """Why the link died (or will be said to have died)."""
        return self._peer.reason

    @property
    def close_code(self) -> int | None:
        """The server's WebSocket Close code, when it sent one."""
        return self._peer.close_code

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the link until it dies. Cancellation: the link dies, the stream is closed."""
        try:
            await self._peer.run(task_status=task_status)
        finally:
            self._die(self._peer.reason)
            await self._peer.aclose(CLOSE_TIMEOUT)
            self.finished.set()

    def kill(self, reason: str) -> None:
        """End the link now (used by the client and by tests breaking a connection on cue)."""
        self._peer.reason = reason
        self._peer.cancel()
        self._die(reason)

    async def request(self, method: str, params: Any) -> Any:
        """Send one request and return its JSON result. Raises the `RpcError` of an error
        reply, or `LinkLost`."""
        if self.dead.is_set():
            raise LinkLost(self.reason, sent=False)
        calls = self._peer.calls
        request_id = calls.next_id()
        frame = codec.encode_request(request_id, method, params)
        limit = self.max_message_size
        if limit is not None and len(frame) > limit:
            raise RequestTooLarge(method, len(frame), limit)
        with calls.pending(request_id, Call(method, len(frame))) as call:
            try:
                await self._peer.outbox.send(Outgoing(call, frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                raise LinkLost(self.reason, sent=False) from None
            del frame
            await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    async def notify(self, method: str, params: Any) -> None:
        try:
            await self._peer.outbox.send(codec.encode_notification(method, params))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise LinkLost(self.reason, sent=False) from None

    def _die(self, reason: str) -> None:
        if self.dead.is_set():
            return
        log.info("%s lost: %s", self.label, reason)
        self.dead.set()
        self._peer.stop_sending()
        self._peer.calls.fail_all(lambda pending: self._error_for(pending, reason))

    def _error_for(self, pending: list[Call], reason: str) -> Callable[[Call], BaseException]:
        refused = None
        if self.close_code == MESSAGE_TOO_BIG:
            refused = max((call for call in pending if call.sent), key=lambda call: call.size,
                          default=None)

        def error(call: Call) -> BaseException:
            if call is refused:
                return RequestTooLarge(call.method, call.size, None)
            return LinkLost(reason, sent=call.sent)

        return error

    @staticmethod
    def _leaving(item: Tracked) -> bool:
        assert isinstance(item, Outgoing)
        return calls_.leaving(item)

    def _on_request(self, request: codec.Request) -> None:
        log.warning("%s: ignored a request from the server: %s", self.label, request.method)

    async def _on_bad_message(self, bad: codec.DecodeError) -> None:
        log.warning("%s: undecodable message from server: %s", self.label, bad.error.message)
