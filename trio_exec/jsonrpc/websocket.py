"""A trio-websocket connection as a `MessageStream`: one message per WebSocket text message.

Rules: the peer's Close becomes `StreamClosed` with its code and a reason naming it
(`connection closed (1001 GOING_AWAY: server shutting down)`); a Close without a code keeps
the peer's default reason. Messages are sent one `send_message` each; the daemon replaces
`send` with its own frame writer (`rpc/connection.py`).
"""

from __future__ import annotations

import attrs
import trio_websocket

from trio_exec.jsonrpc.stream import StreamClosed
from trio_exec.proto.codec import Encoded, Pieces


def stream_closed(closed: trio_websocket.ConnectionClosed) -> StreamClosed:
    reason = closed.reason
    if reason is None:
        return StreamClosed()
    said = f": {reason.reason}" if reason.reason else ""
    return StreamClosed(f"connection closed ({reason.code} {reason.name}{said})", reason.code)


def _text(payload: Encoded) -> str:
    return (b"".join(payload.parts) if isinstance(payload, Pieces) else payload).decode()


@attrs.define(eq=False)
class WebSocketMessages:
    ws: trio_websocket.WebSocketConnection
    can_ping: bool = True

    async def receive(self) -> bytes | str:
        try:
            return await self.ws.get_message()
        except trio_websocket.ConnectionClosed as closed:
            raise stream_closed(closed) from None

    async def send(self, payloads: list[Encoded]) -> bool:
        try:
            for payload in payloads:
                await self.ws.send_message(_text(payload))
        except trio_websocket.ConnectionClosed as closed:
            raise stream_closed(closed) from None
        return True

    async def ping(self) -> None:
        try:
            await self.ws.ping()
        except trio_websocket.ConnectionClosed as closed:
            raise stream_closed(closed) from None

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        if code == 1000 and reason is None:
            await self.ws.aclose()  # the library's own default Close
        else:
            await self.ws.aclose(code, reason)
