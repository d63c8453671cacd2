"""One WebSocket connection: a reader, a writer, a pinger, and the in-flight requests.

Ownership: everything runs in the connection's nursery, whose lifetime is the connection. The
writer is the only task that sends frames; everyone else (responses, the session's
notifications) puts encoded frames into `sink`. The reader never waits for a request: each one
runs as its own task, so a long-poll never delays another request. It waits for room instead:
at the in-flight bounds (requests not yet answered, reply bytes not yet written; `inflight.py`)
it stops reading the socket until the writer has caught up.

Ends of a connection, and what each does to the session:
- the peer closes, the TCP connection breaks, the message limit is hit (Close 1009), or pings
  go unanswered: the nursery is cancelled (in-flight requests are abandoned without a
  response) and the session is parked — only if this connection is still its attachment;
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
from trio_exec.proto import codec, errors
from trio_exec.rpc import dispatch
from trio_exec.rpc.context import CallContext, ConnectionState
from trio_exec.rpc.events import ConnectionEvents
from trio_exec.rpc.inflight import (
    DEFAULT_READ_PAUSE_BYTES,
    DEFAULT_READ_PAUSE_REQUESTS,
    InFlight,
    Reply,
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


@attrs.define(eq=False)
class Connection:
    ws: trio_websocket.WebSocketConnection
    frames: FrameStream
    registry: SessionRegistry
    fs: LocalFilesystem
    config: ConnectionConfig
    label: str = attrs.field(factory=lambda: f"conn-{next(_labels)}")
    events: ConnectionEvents = attrs.field(factory=ConnectionEvents)
    _running: int = 0  # request tasks not yet finished
    _in_flight: InFlight = attrs.field(init=False)
    _idle: trio.Event = attrs.field(factory=trio.Event)
    _scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    _close_code: int = 1000
    _close_reason: str | None = None

    def __attrs_post_init__(self) -> None:
        self._in_flight = InFlight(self.config.read_pause_requests, self.config.read_pause_bytes)

    async def serve(self) -> None:
        """Run until the connection ends, then park the session if this connection still holds
        it. Cancellation: the socket is closed; the session is parked as on any other end."""
        sink, source = trio.open_memory_channel[codec.Encoded | Reply](SINK_CAPACITY)
        nursery: trio.Nursery
        state: ConnectionState | None = None
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    state = ConnectionState(
                        self.label,
                        self.registry,
                        self.fs,
                        sink,
                        on_attached=lambda att: nursery.start_soon(self._close_on_takeover, att, sink),
                    )
                    nursery.start_soon(self._writer, source, nursery.cancel_scope)
                    if self.config.ping_interval:
                        nursery.start_soon(self._pinger, nursery.cancel_scope)
                    await self._reader(state, nursery, sink)
                    nursery.cancel_scope.cancel()
        finally:
            sink.close()
            if state is not None:
                state.close()
            if state is not None and state.session is not None and state.attachment is not None:
                state.session.detach(state.attachment)
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await self.ws.aclose(self._close_code, self._close_reason)
            log.info("%s ended", self.label)

    async def _reader(
        self,
        state: ConnectionState,
        nursery: trio.Nursery,
        sink: trio.MemorySendChannel[codec.Encoded | Reply],
    ) -> None:
        while True:
            await self._in_flight.wait_for_room()
            try:
                frame = await self.ws.get_message()
            except trio_websocket.ConnectionClosed as closed:
                if closed.reason is not None and closed.reason.code == MESSAGE_TOO_BIG:
                    self.events.message_too_big()
                    log.warning("%s: a message over the size limit, closed 1009", self.label)
                else:
                    log.info("%s closed by peer: %s", self.label, closed.reason)
                return
            try:
                message = codec.decode(frame)
            except codec.DecodeError as bad:
                log.info("%s: bad frame: %s", self.label, bad.error.message)
                await self._send(sink, codec.encode_error(bad.reply_id, bad.error))
                continue
            if isinstance(message, codec.Request):
                self._in_flight.request_read()
                self._running += 1
                nursery.start_soon(self._run_request, state, message, sink)
            elif isinstance(message, codec.Notification):
                dispatch.handle_notification(state, message.method)
            else:
                log.info("%s: ignored a client response for id %r", self.label, message.id)

    async def _run_request(
        self,
        state: ConnectionState,
        request: codec.Request,
        sink: trio.MemorySendChannel[codec.Encoded | Reply],
    ) -> None:
        ctx = CallContext(state)
        reply = None
        queued = False
        try:
            reply = self._in_flight.reply_queued(await self._reply_for(ctx, request))
            queued = await self._send(sink, reply)
        finally:
            if not queued:
                self._in_flight.dropped(reply)
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

    @staticmethod
    async def _send(
        sink: trio.MemorySendChannel[codec.Encoded | Reply], payload: codec.Encoded | Reply
    ) -> bool:
        """Queue `payload` for the writer; False when the connection has ended."""
        try:
            await sink.send(payload)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _writer(
        self, source: trio.MemoryReceiveChannel[codec.Encoded | Reply], scope: trio.CancelScope
    ) -> None:
        """Send what is queued, batching what is already waiting into one write; a written
        reply leaves the in-flight counts."""
        async with source:
            async for item in source:
                batch, size = [item], len(_payload(item))
                del item  # a large response is alive once, in the batch
                while size < BATCH_BYTES:
                    try:
                        batch.append(source.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    size += len(_payload(batch[-1]))
                try:
                    sent = await self.frames.send_text_frames(
                        [_payload(queued) for queued in batch],
                        still_open=lambda: self.ws.closed is None,
                    )
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not sent:
                    break
                for queued in batch:
                    if isinstance(queued, Reply):
                        self._in_flight.written(queued)
                del batch
        scope.cancel()

    async def _pinger(self, scope: trio.CancelScope) -> None:
        assert self.config.ping_interval is not None
        while True:
            await trio.sleep(self.config.ping_interval)
            with trio.move_on_after(self.config.ping_timeout) as waited:
                try:
                    await self.ws.ping()
                except trio_websocket.ConnectionClosed:
                    return
            if waited.cancelled_caught:
                log.warning("%s: no pong within %ss, dropping the peer", self.label, self.config.ping_timeout)
                scope.cancel()
                return

    async def _close_on_takeover(
        self, attachment: Attachment, sink: trio.MemorySendChannel[codec.Encoded | Reply]
    ) -> None:
        await attachment.revoked.wait()
        self._close_code = TAKEOVER_CLOSE_CODE
        self._close_reason = "session resumed by another connection"
        with trio.move_on_after(TAKEOVER_FLUSH_TIMEOUT):
            while self._running:
                await self._idle.wait()
        sink.close()  # the writer drains what is queued, then ends the connection

    def shutdown(self) -> None:
        """End the connection with Close 1001; the session is parked like on any other end."""
        self._close_code = 1001
        self._close_reason = "server shutting down"
        self._scope.cancel()


def _payload(item: codec.Encoded | Reply) -> codec.Encoded:
    return item.payload if isinstance(item, Reply) else item
