"""Outbound text frames, written straight to the socket.

Why: trio-websocket's `send_message` takes a `str`, and wsproto then encodes it and copies it
twice more into a frame. For the daemon's hot path (output notifications) and its largest
replies (`fs/readFile`) that is four copies of every byte and 2x the reference's peak memory.
The daemon's payloads are already UTF-8 JSON bytes, so it writes the frame header and the
payload itself: no copy for a large payload, one `send_all` for a batch of small ones.

Rules:
- Only the connection's writer sends data frames this way; trio-websocket still owns the
  handshake, reading, pings, pongs and Close. Both write through one `FrameStream`, whose lock
  keeps every frame whole: trio-websocket writes one frame per `send_all`, the writer a batch
  of whole frames under the same lock.
- No data frame follows a Close: the writer checks the connection is open under the lock.
- Nothing follows a torn frame: a write cut short (cancelled, or failed) may have left part of
  a frame on the wire, so every later write — a Close, a pong — is refused
  (`BrokenResourceError`) instead of landing inside that frame's payload.
- Server frames are never masked; no extension is ever negotiated (compression is declined).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs
import trio

from trio_exec.proto.codec import Encoded, Pieces

TEXT_FIN = 0x81
#: Below this, frames are joined into one write; above it, the payload is written as is.
JOIN_LIMIT = 64 * 1024


def text_frame_header(length: int) -> bytes:
    if length < 126:
        return bytes((TEXT_FIN, length))
    if length < 1 << 16:
        return struct.pack("!BBH", TEXT_FIN, 126, length)
    return struct.pack("!BBQ", TEXT_FIN, 127, length)


def frame_pieces(payloads: list[Encoded]) -> list[bytes]:
    """The writes for `payloads` as text frames: small frames joined, large ones uncopied
    (a `Pieces` message is one frame whose payload is its parts in order)."""
    pieces: list[bytes] = []
    joined: list[bytes] = []
    for payload in payloads:
        length = len(payload)
        parts = payload.parts if isinstance(payload, Pieces) else (payload,)
        header = text_frame_header(length)
        if length < JOIN_LIMIT:
            joined += (header, *parts)
            continue
        if joined:
            pieces.append(b"".join(joined))
            joined = []
        pieces += (header, *parts)
    if joined:
        pieces.append(b"".join(joined))
    return pieces


@attrs.define(eq=False)
class FrameStream(trio.abc.Stream):
    """The connection's socket as trio-websocket sees it: it first replays `_prefix` (the
    request head the front door already read), and it serialises every write.

    Closing it does not close `_inner`: the connection handler owns the socket and closes it
    last, after it had the chance to send a Close frame trio-websocket left out."""

    _inner: trio.abc.Stream
    _prefix: bytes = b""
    _closed: bool = False
    _torn: bool = False
    _write_lock: trio.StrictFIFOLock = attrs.field(factory=trio.StrictFIFOLock)

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

    @property
    def torn(self) -> bool:
        """Whether a write was cut short (nothing may be written to the socket after it)."""
        return self._torn

    async def _write(self, data: bytes | bytearray | memoryview) -> None:
        """One write under the lock; a write cut short leaves the stream torn."""
        if self._torn:
            raise trio.BrokenResourceError("a previous write was cut short mid-frame")
        try:
            await self._inner.send_all(data)
        except BaseException:
            self._torn = True
            raise

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check_open()
        await self._acquire()
        try:
            await self._write(data)
        finally:
            self._write_lock.release()

    async def send_text_frames(
        self, payloads: list[Encoded], *, still_open: Callable[[], bool]
    ) -> bool:
        """Write `payloads` as whole text frames, unless the WebSocket is closing
        (`still_open()` false under the lock). Raises trio's stream errors."""
        self._check_open()
        await self._acquire()
        try:
            if not still_open():
                return False
            for piece in frame_pieces(payloads):
                await self._write(piece)
        finally:
            self._write_lock.release()
        return True

    async def _acquire(self) -> None:
        """Take the write lock; a free one without a scheduler pass of its own (the write that
        follows is the schedule point; a free lock has nobody waiting for it). A cancellation
        already pending is raised here, before any byte is written (no torn frame)."""
        if self._write_lock.locked():
            await self._write_lock.acquire()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._write_lock.acquire_nowait()

    async def wait_send_all_might_not_block(self) -> None:
        await self._inner.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        inner = self._inner
        if isinstance(inner, trio.abc.HalfCloseableStream):
            await inner.send_eof()

    async def aclose(self) -> None:
        self._closed = True
        await trio.lowlevel.checkpoint()
