"""The HTTP front door of every accepted TCP connection.

Rule: the daemon reads the request head itself, so one port serves both plain HTTP and
WebSocket: `GET /readyz` answers 200, a request that fails auth answers 401, any other
non-upgrade request answers 426; an upgrade is handed to trio-websocket with the bytes already
read replayed in front of the stream. Nothing a client sends here can raise out of
`accept_websocket`: a bad head is answered 400 (or the socket closed) and `None` returned.
"""

from __future__ import annotations

import contextlib
import hmac
import logging

import attrs
import h11
import trio
import trio_websocket
from wsproto.connection import ConnectionState
from wsproto.frame_protocol import FrameProtocol

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0


@attrs.define(eq=False)
class ReplayStream(trio.abc.Stream):
    """A view of `_inner` that returns `_prefix` before reading from it.

    Closing the view does not close `_inner`: the connection handler owns the socket and
    closes it last, after it had the chance to send a Close frame trio-websocket left out."""

    _inner: trio.abc.Stream
    _prefix: bytes
    _closed: bool = False

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("stream was closed")

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check_open()
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return bytes(await self._inner.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        await self._inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        inner = self._inner
        if isinstance(inner, trio.abc.HalfCloseableStream):
            await inner.send_eof()

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()


@attrs.frozen
class RequestHead:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def is_upgrade(self) -> bool:
        return "websocket" in self.headers.get("upgrade", "").lower()


@attrs.frozen
class FrontDoorConfig:
    max_message_size: int
    auth_token: str | None = None


def _response(status: int, reason: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    ).encode() + body


async def read_head(stream: trio.abc.Stream) -> tuple[RequestHead, bytes] | None:
    """The parsed head and every byte read so far, or None for a peer that sent no valid
    head (closed early, too large, not HTTP)."""
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD_BYTES:
            return None
        data = await stream.receive_some(16384)
        if not data:
            return None
        buffer += data
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(bytes(buffer))
    try:
        event = parser.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request):
        return None
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers}
    head = RequestHead(event.method.decode("latin-1"), event.target.decode("latin-1"), headers)
    return head, bytes(buffer)


def authorized(head: RequestHead, token: str | None) -> bool:
    if token is None:
        return True
    offered = head.headers.get("authorization", "")
    return hmac.compare_digest(offered.encode(), f"Bearer {token}".encode())


async def accept_websocket(
    stream: trio.abc.Stream, nursery: trio.Nursery, config: FrontDoorConfig
) -> trio_websocket.WebSocketConnection | None:
    """Serve the front door; the accepted WebSocket, or None when the exchange was plain
    HTTP or failed. Cancellation: the caller closes `stream`."""
    with trio.move_on_after(HEAD_TIMEOUT):
        result = await read_head(stream)
        if result is None:
            await _send_quietly(stream, _response(400, "Bad Request", b"bad request\n"))
            return None
        head, raw = result
        path = head.target.split("?", 1)[0]
        if not head.is_upgrade:
            if head.method == "GET" and path == "/readyz":
                await _send_quietly(stream, _response(200, "OK", b"ready\n"))
            else:
                await _send_quietly(
                    stream,
                    _response(
                        426,
                        "Upgrade Required",
                        b"this is a trio-exec WebSocket endpoint; GET /readyz for health\n",
                        "upgrade: websocket\r\n",
                    ),
                )
            return None
        if not authorized(head, config.auth_token):
            await _send_quietly(
                stream,
                _response(401, "Unauthorized", b"unauthorized\n", "www-authenticate: Bearer\r\n"),
            )
            return None
        request = await trio_websocket.wrap_server_stream(
            nursery,
            ReplayStream(stream, raw),
            message_queue_size=16,
            max_message_size=config.max_message_size,
            receive_buffer_size=256 * 1024,
        )
        return await request.accept()
    log.info("peer sent no complete request head within %ss", HEAD_TIMEOUT)
    return None


async def _send_quietly(stream: trio.abc.Stream, data: bytes) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await stream.send_all(data)


_PROTOCOL_ERROR_CLOSES = {1002: "protocol error", 1007: "invalid UTF-8 in a text frame"}


async def send_missing_close(
    ws: trio_websocket.WebSocketConnection, stream: trio.abc.Stream
) -> None:
    """Answer a frame that wsproto rejected (invalid UTF-8 → 1007, protocol violation → 1002)
    with our Close frame.

    A workaround for trio-websocket 0.12, which reports such a rejection as if the peer had
    closed and never sends the Close itself, so the peer would see a bare TCP drop. It reaches
    into two private attributes; `tests/conformance/test_transport.py` pins the behaviour, so
    a library upgrade that changes them fails loudly instead of silently dropping the frame.
    `stream` is the connection's socket (trio-websocket has closed its own view of it).
    """
    reason = ws.closed
    if reason is None or reason.code not in _PROTOCOL_ERROR_CLOSES:
        return
    # wsproto marks its side closing on a rejected frame but leaves the frame to its user.
    if ws._wsproto.state is not ConnectionState.LOCAL_CLOSING:
        return
    code = reason.code
    frame = FrameProtocol(client=False, extensions=[]).close(code, _PROTOCOL_ERROR_CLOSES[code])
    await _send_quietly(stream, bytes(frame))
