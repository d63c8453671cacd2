"""The HTTP front door of every accepted TCP connection.

Rule: the daemon reads the request head itself, so one port serves both plain HTTP and
WebSocket: `GET /readyz` answers 200, a `GET` of one of the configured `routes` (`/metrics`)
answers what its function returns (behind the token like an upgrade), a request that fails
auth answers 401, any other
non-upgrade request answers 426 (`HEAD` as `GET`, without the body); an upgrade is handed to
trio-websocket with the bytes already read replayed in front of the stream. Nothing a client
sends here can raise out of `accept_websocket`: a bad head is answered 400 (or the socket
closed) and `None` returned.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Callable, Mapping

import attrs
import h11
import trio
import trio_websocket
from wsproto.connection import ConnectionState
from wsproto.frame_protocol import FrameProtocol

from trio_exec.ws import masking
from trio_exec.ws.frames import FrameStream

masking.install()

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0


@attrs.frozen
class Upgraded:
    """An accepted WebSocket and the stream under it (the writer sends its frames there)."""

    ws: trio_websocket.WebSocketConnection
    frames: FrameStream


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
    auth_token: str | None = None
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
            elif route is not None and not authorized(head, config.auth_token):
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
        if not authorized(head, config.auth_token):
            await _send_quietly(
                stream,
                _response(401, "Unauthorized", b"unauthorized\n", "www-authenticate: Bearer\r\n"),
            )
            return None
        frames = FrameStream(stream, raw)
        request = await trio_websocket.wrap_server_stream(
            nursery,
            frames,
            message_queue_size=16,
            max_message_size=config.max_message_size,
            receive_buffer_size=256 * 1024,
        )
        return Upgraded(await request.accept(), frames)
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
