"""The HTTP front door of every accepted TCP connection.

Rule: the daemon reads the request head itself, so one port serves both plain HTTP and
WebSocket: `GET /readyz` answers 200, a `GET` of one of the configured `routes` (`/metrics`)
answers what its function returns (behind the token like an upgrade), a request that fails
auth answers 401, any other non-upgrade request answers 426 (`HEAD` as `GET`, without the
body); the token rules are `ws/auth.py`'s (a header given twice counts by its first value); an
upgrade beyond the connection limit answers 503 naming the limit (`ConnectionSlots`; /readyz
still answers); any other upgrade is handed to trio-websocket with the bytes already read
replayed in front of the stream, holding a slot that the caller gives back
(`Upgraded.release`) when it ends. Nothing a client
sends here can raise out of `accept_websocket`: a bad head is answered 400 (or the socket
closed) and `None` returned.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping

import attrs
import h11
import trio
import trio_websocket
from wsproto.connection import ConnectionState
from wsproto.frame_protocol import FrameProtocol

from trio_exec.ws import masking
from trio_exec.ws.auth import BearerAuth
from trio_exec.ws.frames import FrameStream

masking.install()

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0


#: Connections served at once (upgraded, not yet ended).
DEFAULT_MAX_CONNECTIONS = 128


@attrs.define(eq=False)
class ConnectionSlots:
    """The connection limit. Invariant: `in_use` counts the slots taken and not released."""

    limit: int = DEFAULT_MAX_CONNECTIONS
    in_use: int = 0

    def take(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1


@attrs.frozen
class Upgraded:
    """An accepted WebSocket and the stream under it (the writer sends its frames there).
    It holds a connection slot: `release()` it once, when the connection has ended."""

    ws: trio_websocket.WebSocketConnection
    frames: FrameStream
    slots: ConnectionSlots

    def release(self) -> None:
        self.slots.release()


@attrs.frozen
class RequestHead:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def is_upgrade(self) -> bool:
        return "websocket" in self.headers.get("upgrade", "").lower()


#: A plain-HTTP page: a function returning its body and content type.
Route = Callable[[], tuple[bytes, str]]


@attrs.frozen
class FrontDoorConfig:
    max_message_size: int
    #: The token the upgrade must carry; None serves without one.
    auth: BearerAuth | None = None
    slots: ConnectionSlots = attrs.field(factory=ConnectionSlots)
    #: Pages served to `GET`/`HEAD` by path, behind the token when there is one.
    routes: Mapping[str, Route] = attrs.field(factory=dict)


def _response(
    status: int, reason: str, body: bytes, extra: str = "", *, without_body: bool = False,
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    ).encode() + (b"" if without_body else body)


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
    headers: dict[str, str] = {}
    for name, value in event.headers:  # the first of repeated headers counts
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    head = RequestHead(event.method.decode("latin-1"), event.target.decode("latin-1"), headers)
    return head, bytes(buffer)


def authorized(head: RequestHead, auth: BearerAuth | None) -> bool:
    return auth is None or auth.accepts(head.headers.get("authorization"))


async def accept_websocket(
    stream: trio.abc.Stream, nursery: trio.Nursery, config: FrontDoorConfig
) -> Upgraded | None:
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
            bodiless = head.method == "HEAD"
            route = config.routes.get(path) if head.method in ("GET", "HEAD") else None
            if head.method in ("GET", "HEAD") and path == "/readyz":
                await _send_quietly(stream, _response(200, "OK", b"ready\n", without_body=bodiless))
            elif route is not None and not authorized(head, config.auth):
                await _send_quietly(stream, _response(
                    401, "Unauthorized", b"unauthorized\n", "www-authenticate: Bearer\r\n",
                    without_body=bodiless,
                ))
            elif route is not None:
                body, content_type = route()
                await _send_quietly(stream, _response(
                    200, "OK", body, without_body=bodiless, content_type=content_type
                ))
            else:
                await _send_quietly(
                    stream,
                    _response(
                        426,
                        "Upgrade Required",
                        b"this is a trio-exec WebSocket endpoint; GET /readyz for health\n",
                        "upgrade: websocket\r\n",
                        without_body=bodiless,
                    ),
                )
            return None
        if not authorized(head, config.auth):
            await _send_quietly(
                stream,
                _response(401, "Unauthorized", b"unauthorized\n", "www-authenticate: Bearer\r\n"),
            )
            return None
        if not config.slots.take():
            text = f"connection limit reached: {config.slots.limit} connections\n"
            log.warning("refused an upgrade: %s", text.strip())
            await _send_quietly(
                stream, _response(503, "Service Unavailable", text.encode(), "retry-after: 1\r\n")
            )
            return None
        upgraded = None
        try:
            frames = FrameStream(stream, raw)
            request = await trio_websocket.wrap_server_stream(
                nursery,
                frames,
                message_queue_size=16,
                max_message_size=config.max_message_size,
                receive_buffer_size=256 * 1024,
            )
            upgraded = Upgraded(await request.accept(), frames, config.slots)
            return upgraded
        finally:
            if upgraded is None:
                config.slots.release()
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
