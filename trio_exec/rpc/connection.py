"""One connection of the daemon: a `Peer` (`jsonrpc/peer.py`) serving requests, and the
session it holds.

Ownership: everything runs in the connection's nursery, whose lifetime is the connection.
Responses and the session's notifications are sent through the peer (`Peer.send`), one write
at a time in the order given: written at once by their task when nothing is queued, else
queued for the peer's writer. The reader never waits for a
request: each one runs as its own task, so a long-poll never delays another request. It waits
for room instead: at the in-flight bounds (requests not yet answered, reply bytes not yet
written; `inflight.py`) it stops reading the stream until the writer has caught up. A request
beyond the pending limit (`inflight.py`: long-polls included) is answered at once with the
limit's error, not run.

The stream is a WebSocket (`WebSocketStream`: the daemon's own frame writer, `ws/frames.py`)
or the lines of stdin and stdout (`jsonrpc/lines.py`, `serve --listen stdio`).

Ends of a connection, and what each does to the session:
- the peer closes, the TCP connection breaks, stdin ends, the message limit is hit
  (Close 1009), or pings go unanswered: the nursery is cancelled (in-flight requests are
  abandoned without a response) and the session is parked — only if this connection is still
  its attachment;
- another connection resumes the session (takeover): in-flight long-polls are answered
  -32600 `session has been resumed by another connection`, then the socket is closed with
  code 4000, and nothing is detached (the token is stale);
- daemon shutdown: Close 1001.
"""

from __future__ import annotations

import itertools
import logging
import time

import attrs
import trio
import trio_websocket

from trio_exec.fs.local import LocalFilesystem
from trio_exec.jsonrpc.peer import Peer, Tracked
from trio_exec.jsonrpc.stream import MessageStream
from trio_exec.jsonrpc.websocket import WebSocketMessages
from trio_exec.proto import codec, errors
from trio_exec.rpc import dispatch
from trio_exec.rpc.context import CallContext, ConnectionState
from trio_exec.rpc.events import ConnectionEvents
from trio_exec.rpc.inflight import (
    DEFAULT_MAX_PENDING_REQUESTS,
    DEFAULT_READ_PAUSE_BYTES,
    DEFAULT_READ_PAUSE_REQUESTS,
    InFlight,
    Reply,
    Slot,
    is_long_poll,
)
from trio_exec.session.registry import SessionRegistry
from trio_exec.session.session import Attachment
from trio_exec.ws.frames import FrameStream

log = logging.getLogger(__name__)

SINK_CAPACITY = 64
#: The writer joins queued frames into one write up to about this many bytes.
BATCH_BYTES = 256 * 1024
CLOSE_TIMEOUT = 2.0
#: The Close code for a message over the size limit.
MESSAGE_TOO_BIG = 1009
TAKEOVER_FLUSH_TIMEOUT = 1.0
TAKEOVER_CLOSE_CODE = 4000

_labels = itertools.count(1)


@attrs.frozen
class ConnectionConfig:
    ping_interval: float | None = 20.0
    ping_timeout: float = 20.0
    #: Requests in flight (read, reply not yet written) at which reading the socket pauses.
    read_pause_requests: int = DEFAULT_READ_PAUSE_REQUESTS
    #: Bytes of replies queued but not yet written at which reading the socket pauses.
    read_pause_bytes: int = DEFAULT_READ_PAUSE_BYTES
    #: Requests read and not yet answered (long-polls included) beyond which one is refused.
    max_pending_requests: int = DEFAULT_MAX_PENDING_REQUESTS


@attrs.define(eq=False)
class WebSocketStream(WebSocketMessages):
    """The daemon's WebSocket: trio-websocket reads, pings and closes; the daemon's own frame
    writer sends (`ws/frames.py`), never after a Close."""

    frames: FrameStream = attrs.field(kw_only=True)

    async def send(self, payloads: list[codec.Encoded]) -> bool:
        return await self.frames.send_text_frames(
            payloads, still_open=lambda: self.ws.closed is None
        )


def websocket_stream(ws: trio_websocket.WebSocketConnection, frames: FrameStream) -> WebSocketStream:
    return WebSocketStream(ws, frames=frames)


@attrs.define(eq=False)
class Connection:
    stream: MessageStream
    registry: SessionRegistry
    fs: LocalFilesystem
    config: ConnectionConfig
    label: str = attrs.field(factory=lambda: f"conn-{next(_labels)}")
    events: ConnectionEvents = attrs.field(factory=ConnectionEvents)
    _running: int = 0  # request tasks not yet finished
    _in_flight: InFlight = attrs.field(init=False)
    _peer: Peer = attrs.field(init=False)
    _state: ConnectionState | None = None
    _nursery: trio.Nursery | None = None
    _idle: trio.Event = attrs.field(factory=trio.Event)
    _close_code: int = 1000
    _close_reason: str | None = None

    def __attrs_post_init__(self) -> None:
        self._in_flight = InFlight(
            self.config.read_pause_requests,
            self.config.read_pause_bytes,
            self.config.max_pending_requests,
        )
        self._peer = Peer(
            self.stream,
            self.label,
            "client",
            on_request=self._on_request,
            on_notification=self._on_notification,
            on_bad_message=self._on_bad_message,
            before_read=self._in_flight.wait_for_room,
            written=self._written,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            batch_bytes=BATCH_BYTES,
            outbox_capacity=SINK_CAPACITY,
        )

    async def serve(self) -> None:
        """Run until the connection ends, then park the session if this connection still holds
        it. Cancellation: the stream is closed; the session is parked as on any other end."""
        state: ConnectionState | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    state = self._state = ConnectionState(
                        self.label,
                        self.registry,
                        self.fs,
                        self._peer.send,
                        on_attached=self._watch_takeover,
                    )
                    await self._peer.run()
                finally:
                    # ending: no task starts in it any more (a takeover now finds the
                    # connection closing already; the nursery may close under it at any time)
                    self._nursery = None
                nursery.cancel_scope.cancel()
        finally:
            self._peer.close_outbox()
            if state is not None:
                state.close()
            if state is not None and state.session is not None and state.attachment is not None:
                state.session.detach(state.attachment)
            if self._peer.close_code == MESSAGE_TOO_BIG:
                self.events.message_too_big()
                log.warning("%s: a message over the size limit, closed 1009", self.label)
            await self._peer.aclose(CLOSE_TIMEOUT, self._close_code, self._close_reason)
            log.info("%s ended", self.label)

    def _on_request(self, request: codec.Request) -> None:
        assert self._nursery is not None and self._state is not None
        slot = self._in_flight.request_read(long_poll=is_long_poll(request.method, request.params))
        self._running += 1
        self._nursery.start_soon(self._run_request, self._state, request, slot)

    def _on_notification(self, notification: codec.Notification) -> None:
        assert self._state is not None
        dispatch.handle_notification(self._state, notification.method)

    async def _on_bad_message(self, bad: codec.DecodeError) -> None:
        log.info("%s: bad frame: %s", self.label, bad.error.message)
        await self._send(codec.encode_error(bad.reply_id, bad.error))

    def _written(self, item: Tracked) -> None:
        if isinstance(item, Reply):
            self._in_flight.written(item)

    async def _run_request(
        self, state: ConnectionState, request: codec.Request, slot: Slot
    ) -> None:
        ctx = CallContext(state)
        reply = None
        queued = False
        try:
            if slot.admitted:
                payload = await self._reply_for(ctx, request)
            else:
                limit = self.config.max_pending_requests
                payload = codec.encode_error(
                    request.id, errors.limit_reached("pending request", limit, "per connection")
                )
            reply = self._in_flight.reply_queued(slot, payload)
            queued = await self._send(reply)
        finally:
            if not queued:
                self._in_flight.dropped(slot, reply)
            ctx.run_after_reply()
            self._running -= 1
            if self._running == 0:
                self._idle.set()
                self._idle = trio.Event()

    async def _reply_for(
        self, ctx: CallContext, request: codec.Request
    ) -> codec.Encoded:
        """The encoded response (the result object is released before the bytes travel on: a
        large `fs/readFile` result must not stay alive beside its encoding)."""
        started = time.perf_counter()
        try:
            encoded = codec.encode_result(
                request.id, await dispatch.call(ctx, request.method, request.params)
            )
        except errors.RpcError as exc:
            self.events.request_done(request.method, exc.code, time.perf_counter() - started)
            return codec.encode_error(request.id, exc)
        except Exception:
            log.exception("%s: %s failed", self.label, request.method)
            failure = errors.InternalError("internal error")
            self.events.request_done(request.method, failure.code, time.perf_counter() - started)
            return codec.encode_error(request.id, failure)
        self.events.request_done(request.method, None, time.perf_counter() - started)
        return encoded

    async def _send(self, payload: codec.Encoded | Reply) -> bool:
        """Queue `payload` for the writer; False when the connection has ended."""
        try:
            await self._peer.send(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    def _watch_takeover(self, attachment: Attachment) -> None:
        """A takeover of the session starts closing this connection (no task waits for it:
        the attachment calls back, and only while the connection runs)."""

        def revoked() -> None:
            if self._nursery is not None:
                self._nursery.start_soon(self._close_on_takeover)

        attachment.on_revoke = revoked

    async def _close_on_takeover(self) -> None:
        self._close_code = TAKEOVER_CLOSE_CODE
        self._close_reason = "session resumed by another connection"
        with trio.move_on_after(TAKEOVER_FLUSH_TIMEOUT):
            while self._running:
                await self._idle.wait()
        self._peer.close_outbox()  # the writer drains what is queued, then ends the connection

    def shutdown(self) -> None:
        """End the connection with Close 1001; the session is parked like on any other end."""
        self._close_code = 1001
        self._close_reason = "server shutting down"
        self._peer.cancel()
