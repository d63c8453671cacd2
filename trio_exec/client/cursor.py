"""The ordered output of one process, rebuilt from notifications and `process/read` results.

Rules (pure: no trio, no I/O; the local and the remote `ExecProcess` both use it):
- `cursor` is the seq through which every event is accounted for: each output chunk with
  seq <= cursor has been queued exactly once, and exit/close events <= cursor are recorded.
- A notification is taken only when it carries the very next seq (cursor + 1) and the queue
  has room (by default it always has: see `DEFAULT_QUEUE_LIMIT`). One at or below the cursor is a duplicate and is dropped. One beyond cursor + 1
  means events are missing (a reconnect, a full queue, a server that reorders): the cursor
  becomes `stale` and the owner must `process/read afterSeq=cursor` to fill the hole.
- A read result with chunks queues the new ones and moves the cursor to the last; it stays
  stale, because the exit/close events after the last chunk are not listed in a read. A read
  with no chunks accounts for every event below `nextSeq`.
- A read result carrying `retentionGap` raises `OutputLost`: output is never silently skipped.
- A read comes as the wire's result (`apply_read`, base64) or already decoded
  (`apply_decoded_read`, the local environment's); both follow these rules in one method.
- Exit status (code, signal) is state, not stream: taken from any notification or read, in or
  out of order. The stream ends (`finished`) once the close event is accounted for and the
  queue is drained.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import attrs

from trio_exec.client.errors import OutputLost
from trio_exec.proto import b64
from trio_exec.proto.process_messages import ProcessReadResult

T = TypeVar("T")


class DecodedChunk(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def stream(self) -> str: ...
    @property
    def data(self) -> bytes: ...


class DecodedRead(Protocol):
    """A read of a process's log with its output as bytes (`process.events.ProcessRead`)."""

    @property
    def chunks(self) -> Sequence[DecodedChunk]: ...
    @property
    def next_seq(self) -> int: ...
    @property
    def exited(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def signal(self) -> str | None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def first_retained_seq(self) -> int | None: ...


#: No limit by default: a client that drops what it received must read it back from the
#: server's 1 MiB retention, which a fast producer has overwritten by then (OutputLost).
DEFAULT_QUEUE_LIMIT: int | None = None


@attrs.frozen
class Output:
    """One chunk of a process's output: `stream` is "stdout", "stderr" or "pty"."""

    seq: int
    stream: str
    data: bytes


@attrs.define(eq=False)
class OutputCursor:
    """Invariants: `_queue` holds chunks in ascending seq, all <= `cursor`; `_queued_bytes` is
    the sum of their sizes; `closed` implies the close event's seq <= `cursor`."""

    process_id: str
    queue_limit: int | None = DEFAULT_QUEUE_LIMIT
    cursor: int = 0
    stale: bool = False
    exited: bool = False
    exit_code: int | None = None
    signal: str | None = None
    closed: bool = False
    _queue: deque[Output] = attrs.field(factory=deque)
    _queued_bytes: int = 0

    @property
    def finished(self) -> bool:
        """Every output chunk has been handed out and nothing more will come."""
        return self.closed and not self._queue

    @property
    def has_queued(self) -> bool:
        return bool(self._queue)

    def pop(self) -> Output | None:
        if not self._queue:
            return None
        item = self._queue.popleft()
        self._queued_bytes -= len(item.data)
        return item

    def _push(self, item: Output) -> None:
        self._queue.append(item)
        self._queued_bytes += len(item.data)

    def _takes(self, seq: int) -> bool:
        """Whether the event `seq` is the next one; marks the cursor stale on a hole."""
        if seq <= self.cursor:
            return False
        if seq > self.cursor + 1:
            self.stale = True
            return False
        return True

    # --- notifications --------------------------------------------------------------------

    def on_output(self, seq: int, stream: str, chunk_base64: str) -> bool:
        """A `process/output` notification; whether it was queued."""
        if not self._takes(seq):
            return False
        limit = self.queue_limit
        if self._queue and limit is not None and self._queued_bytes >= limit:
            self.stale = True  # the server keeps it; a read fetches it once there is room
            return False
        self._push(Output(seq, stream, b64.decode(chunk_base64)))
        self.cursor = seq
        return True

    def on_exited(self, seq: int, exit_code: int, signal: str | None) -> None:
        self._record_exit(exit_code, signal)
        if self._takes(seq):
            self.cursor = seq

    def on_closed(self, seq: int) -> None:
        if self._takes(seq):
            self.cursor = seq
            self.closed = True

    # --- reads ----------------------------------------------------------------------------

    def apply_read(self, after_seq: int, result: ProcessReadResult) -> None:
        """The result of `process/read afterSeq=after_seq` (which must be the cursor at the
        time the read was sent). Raises `OutputLost` on a retention gap."""
        gap = result.retention_gap
        self._apply_read(
            after_seq,
            [(chunk.seq, chunk.stream, chunk.chunk) for chunk in result.chunks],
            b64.decode,
            next_seq=result.next_seq,
            exited=result.exited,
            exit_code=result.exit_code,
            signal=result.signal,
            closed=result.closed,
            first_retained_seq=None if gap is None else gap.first_retained_seq,
        )

    def apply_decoded_read(self, after_seq: int, read: DecodedRead) -> None:
        """`apply_read` for a read whose output is already bytes (the local environment's
        `ProcessRead`): the same rules, no base64."""
        self._apply_read(
            after_seq,
            [(chunk.seq, chunk.stream, chunk.data) for chunk in read.chunks],
            _as_is,
            next_seq=read.next_seq,
            exited=read.exited,
            exit_code=read.exit_code,
            signal=read.signal,
            closed=read.closed,
            first_retained_seq=read.first_retained_seq,
        )

    def _apply_read(
        self,
        after_seq: int,
        chunks: Sequence[tuple[int, str, T]],
        decode: Callable[[T], bytes],
        *,
        next_seq: int,
        exited: bool,
        exit_code: int | None,
        signal: str | None,
        closed: bool,
        first_retained_seq: int | None,
    ) -> None:
        if exited and exit_code is not None:
            self._record_exit(exit_code, signal)
        if first_retained_seq is not None and first_retained_seq > self.cursor + 1:
            raise OutputLost(self.process_id, self.cursor, first_retained_seq)
        if chunks:
            for seq, stream, payload in chunks:
                if seq > self.cursor:
                    self._push(Output(seq, stream, decode(payload)))
                    self.cursor = seq
            self.stale = True  # events after the last chunk are not listed: read again
            return
        if after_seq == self.cursor:
            self.cursor = max(self.cursor, next_seq - 1)
            self.stale = False
            if closed:
                self.closed = True
        # else: notifications moved the cursor while the read was in flight; they are newer

    def _record_exit(self, exit_code: int, signal: str | None) -> None:
        self.exited = True
        self.exit_code = exit_code
        if signal is not None:
            self.signal = signal


def _as_is(data: bytes) -> bytes:
    return data


class Receiver(Protocol):
    async def receive(self) -> Output | None: ...


@attrs.define(eq=False)
class OutputIterator:
    """`async for chunk in process.output()` over anything with `receive()` (None = the end)."""

    _source: Receiver

    def __aiter__(self) -> OutputIterator:
        return self

    async def __anext__(self) -> Output:
        item = await self._source.receive()
        if item is None:
            raise StopAsyncIteration
        return item
