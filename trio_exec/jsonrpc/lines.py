"""Newline-delimited JSON over a pair of byte streams: the `stdio` transport (a daemon's stdin
and stdout, or a `--via` command's), as the codex client drives an exec-server child.

Rules:
- One message per line each way; a line ends at `\\n`, a `\\r` before it is dropped, blank
  lines are skipped. Outbound messages are compact JSON, which never holds a raw newline.
- `Content-Length` framing is refused: its header line is answered -32600 (a `DecodeError`
  from `receive`), and the stream goes on with the next line.
- A line longer than `max_message_size` is refused the same way (-32600) and skipped to its
  end; no more than the limit is ever buffered.
- The end of input is the end of the peer (`StreamClosed`); a last line without its `\\n` is
  still a message. There is nothing to ping: a pipe's end is its EOF.
- Nothing follows a torn line: a write cut short makes every later write fail
  (`BrokenResourceError`) instead of landing inside that line.
"""

from __future__ import annotations

import attrs
import trio

from trio_exec.jsonrpc.stream import StreamClosed
from trio_exec.proto import codec
from trio_exec.proto.errors import InvalidRequest

RECEIVE_CHUNK = 64 * 1024
#: Below this, lines are joined into one write; above it, a payload is written uncopied.
JOIN_LIMIT = 64 * 1024
CONTENT_LENGTH = b"content-length:"


@attrs.define(eq=False)
class LineMessages:
    receive_stream: trio.abc.ReceiveStream
    send_stream: trio.abc.SendStream
    max_message_size: int = codec.DEFAULT_MAX_MESSAGE_SIZE
    can_ping: bool = False
    _buffer: bytearray = attrs.field(factory=bytearray)
    #: Looked through for a newline already (never searched twice).
    _scanned: int = 0
    _eof: bool = False
    _skipping: bool = False
    _torn: bool = False

    async def receive(self) -> bytes | str:
        while True:
            line = self._take_line()
            if line is None:
                if self._eof:
                    raise StreamClosed("end of input")
                await self._fill()
                continue
            if line.strip():
                if line.lstrip()[: len(CONTENT_LENGTH)].lower() == CONTENT_LENGTH:
                    raise codec.DecodeError(InvalidRequest(
                        "Content-Length framing is not supported: send one JSON message per line"
                    ), None)
                return line

    def _take_line(self) -> bytes | None:
        """The next whole line (without its end), or None when more input is needed."""
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            if self._eof and self._buffer and not self._skipping:
                line = bytes(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return line.removesuffix(b"\r")
            self._scanned = len(self._buffer)
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        if self._skipping:
            self._skipping = False
            return b""
        return line.removesuffix(b"\r")

    async def _fill(self) -> None:
        data = await self.receive_stream.receive_some(RECEIVE_CHUNK)
        if not data:
            self._eof = True
            return
        self._buffer += data
        if len(self._buffer) > self.max_message_size and b"\n" not in self._buffer:
            self._buffer.clear()
            self._scanned = 0
            if not self._skipping:
                self._skipping = True
                raise codec.DecodeError(InvalidRequest(
                    f"message larger than {self.max_message_size} bytes refused"
                ), None)

    async def send(self, payloads: list[codec.Encoded]) -> bool:
        if self._torn:
            raise trio.BrokenResourceError("a previous write was cut short mid-line")
        try:
            for piece in _line_pieces(payloads):
                await self.send_stream.send_all(piece)
        except BaseException:
            self._torn = True
            raise
        return True

    async def ping(self) -> None:
        raise NotImplementedError("a line stream cannot be pinged")

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        try:
            await self.send_stream.aclose()
        finally:
            await self.receive_stream.aclose()


def _line_pieces(payloads: list[codec.Encoded]) -> list[bytes]:
    """The writes for `payloads` as lines: small ones joined, large ones uncopied."""
    pieces: list[bytes] = []
    joined: list[bytes] = []
    for payload in payloads:
        parts = payload.parts if isinstance(payload, codec.Pieces) else (payload,)
        if len(payload) < JOIN_LIMIT:
            joined += (*parts, b"\n")
            continue
        if joined:
            pieces.append(b"".join(joined))
            joined = []
        pieces += (*parts, b"\n")
    if joined:
        pieces.append(b"".join(joined))
    return pieces
