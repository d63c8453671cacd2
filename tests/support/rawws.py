"""A bare WebSocket client on wsproto, for what trio-websocket hides or forbids.

trio-websocket's client never offers permessage-deflate, records 1000 for every close it
initiates whatever the server does, and cannot send invalid UTF-8 in a text frame. The tests
of the transport itself (compression offer, Close-frame replies, frame-level errors) use this
client instead: it reports exactly which events arrived and whether the TCP stream ended.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Message,
    RejectConnection,
    Request,
)
from wsproto.extensions import PerMessageDeflate

TIMEOUT = 10.0


@attrs.define(eq=False)
class RawWs:
    stream: trio.SocketStream
    ws: WSConnection
    events: list[Event] = attrs.field(factory=list)
    eof: bool = False
    accepted: AcceptConnection | None = None

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send_bytes(self, data: bytes) -> None:
        """Bytes straight onto the TCP stream (hand-built frames)."""
        await self.stream.send_all(data)

    async def _receive_once(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except trio.BrokenResourceError:
            data = b""
        if not data:
            # not fed to wsproto: it would invent a 1006 CloseConnection, and the tests
            # need to tell a real Close frame from a bare TCP drop
            self.eof = True
            return
        self.ws.receive_data(data)
        self.events.extend(self.ws.events())

    async def wait_event(self, kind: type[Event], *, within: float = TIMEOUT) -> Event | None:
        """The first received event of ``kind``, or None if the TCP stream ended first."""
        with trio.fail_after(within):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        self.events.remove(event)
                        return event
                if self.eof:
                    return None
                await self._receive_once()

    async def wait_eof(self, *, within: float = TIMEOUT) -> None:
        with trio.fail_after(within):
            while not self.eof:
                await self._receive_once()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (for payloads wsproto would refuse to build)."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", n)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


@asynccontextmanager
async def open_raw(
    host: str, port: int, *, deflate: bool = False, path: str = "/"
) -> AsyncIterator[RawWs]:
    """Connect and send the upgrade request; the caller waits for the answer.

    ``raw.accepted`` is set once :meth:`RawWs.wait_event` saw ``AcceptConnection``.
    """
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        ws = WSConnection(ConnectionType.CLIENT)
        raw = RawWs(stream, ws)
        extensions = [PerMessageDeflate()] if deflate else []
        await raw.send(Request(host=f"{host}:{port}", target=path, extensions=extensions))
        yield raw


async def handshake_answer(raw: RawWs) -> AcceptConnection | RejectConnection | None:
    """Wait for the upgrade answer: accepted, rejected, or None when TCP ended first."""
    with trio.fail_after(TIMEOUT):
        while True:
            for event in raw.events:
                if isinstance(event, AcceptConnection | RejectConnection):
                    raw.events.remove(event)
                    if isinstance(event, AcceptConnection):
                        raw.accepted = event
                    return event
            if raw.eof:
                return None
            await raw._receive_once()


__all__ = ["CloseConnection", "Message", "RawWs", "handshake_answer", "masked_frame", "open_raw"]
