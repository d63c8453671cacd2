"""What the peer core reads and writes: whole messages, through a `MessageStream`.

Rules:
- `receive()` returns one whole inbound message (JSON text, not yet decoded); the peer's end
  of the stream raises `StreamClosed` with the reason and, for a WebSocket, the Close code.
  A message the stream itself refuses while going on (wrong framing, too long) raises
  `codec.DecodeError`, answered like an undecodable message.
- `send(payloads)` writes the messages in order, each whole; it returns False, writing
  nothing, when the stream is already closing; a broken stream raises `StreamClosed` or
  trio's `BrokenResourceError`/`ClosedResourceError`.
- `ping()` returns once the peer has answered a probe; a stream that cannot probe its peer
  (`can_ping` false: a pipe, whose end is its EOF) is never pinged.
- `aclose(code, reason)` ends the stream; `code`/`reason` are a WebSocket's Close frame and
  mean nothing to other transports.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from trio_exec.proto.codec import Encoded


class StreamClosed(Exception):
    """The stream ended; `reason` is the peer's words (None: none given), `code` a WebSocket
    Close code when there was one."""

    def __init__(self, reason: str | None = None, code: int | None = None) -> None:
        super().__init__(reason or "stream closed")
        self.reason = reason
        self.code = code


@runtime_checkable
class MessageStream(Protocol):
    can_ping: bool

    async def receive(self) -> bytes | str: ...

    async def send(self, payloads: list[Encoded]) -> bool: ...

    async def ping(self) -> None: ...

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None: ...
