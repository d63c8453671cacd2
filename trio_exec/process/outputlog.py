"""The seq-numbered event log of one process (pure: no trio, no I/O).

Rules:
- One counter per process, starting at 1, shared by output chunks, the exit event and the close
  event; every event takes exactly one number, in the order it is recorded.
- At most `limit` bytes of output are retained; older chunks are dropped whole from the front.
  The exit and close events are never dropped.
- With a `budget` (`retention.py`), the log also draws on the daemon-wide budget: it charges
  what it retains, gives back what it drops, and the budget may make it drop more (any chunk,
  the newest too); `discard()` leaves the budget when the process is forgotten.
- `read(after_seq, max_bytes, rule)` follows the references: retained chunks with
  seq > after_seq in ascending order; never split; the first is always returned; more are added
  while the total stays within `max_bytes`. When chunks the caller asked for were dropped, the
  view says so.
- `next_seq` has one rule per dialect (`NextSeqRule`; docs/protocol-dialects.md §4.3, probe
  p11). 0.120: the last returned seq + 1, or, with no chunks, the next unallocated seq.
  0.169: without `max_bytes`, always the next unallocated seq (so a read that reaches the end
  of a closed process counts its exit and close events); with `max_bytes`, the 0.120 rule.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs

from trio_exec.process.retention import RetentionBudget

DEFAULT_RETAINED_BYTES = 1024 * 1024


class NextSeqRule(enum.Enum):
    """How `ReadView.next_seq` is chosen (see the module rules)."""

    #: codex 0.120: after the last returned chunk; the next unallocated seq without chunks.
    AFTER_LAST_CHUNK = "after-last-chunk"
    #: codex 0.169/0.171: the next unallocated seq unless `max_bytes` limited the read.
    UNALLOCATED_UNLESS_LIMITED = "unallocated-unless-limited"


@attrs.frozen
class Chunk:
    seq: int
    stream: str
    data: bytes


@attrs.frozen
class ReadView:
    chunks: list[Chunk]
    next_seq: int
    #: Set when output with seq in (after_seq, first_retained_seq) was dropped.
    first_retained_seq: int | None = None


@attrs.define(eq=False)
class OutputLog:
    """Invariants: `_chunks` is in ascending seq order; `_retained` is the sum of their sizes
    and never exceeds `limit` except for a single chunk larger than it; `_dropped_through` is the
    seq of the newest chunk dropped by the cap (0 while nothing was dropped)."""

    limit: int = DEFAULT_RETAINED_BYTES
    _chunks: deque[Chunk] = attrs.field(factory=deque)
    _retained: int = 0
    _next_seq: int = 1
    _dropped_through: int = 0  # highest output seq dropped by the cap (0: none)
    exit_seq: int | None = None
    close_seq: int | None = None
    budget: RetentionBudget | None = None

    def __attrs_post_init__(self) -> None:
        if self.budget is not None:
            self.budget.opened(self)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def last_seq(self) -> int:
        return self._next_seq - 1

    @property
    def exited(self) -> bool:
        return self.exit_seq is not None

    @property
    def closed(self) -> bool:
        return self.close_seq is not None

    @property
    def retained_bytes(self) -> int:
        return self._retained

    @property
    def has_dropped(self) -> bool:
        """Whether the cap has dropped output."""
        return self._dropped_through > 0

    def _allocate(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def append_output(self, stream: str, data: bytes) -> Chunk:
        if self.closed:
            raise ValueError("output after close")
        chunk = Chunk(self._allocate(), stream, data)
        self._chunks.append(chunk)
        self._retained += len(data)
        while self._retained > self.limit and len(self._chunks) > 1:
            self.drop_oldest()
        if self.budget is not None:
            self.budget.charge(len(data))
        return chunk

    def drop_oldest(self) -> None:
        """Drop the oldest retained chunk (a read asking for it is told of the gap)."""
        dropped = self._chunks.popleft()
        self._retained -= len(dropped.data)
        self._dropped_through = dropped.seq
        if self.budget is not None:
            self.budget.release(len(dropped.data))

    def discard(self) -> None:
        """The process is forgotten: its retained output leaves the budget."""
        if self.budget is not None:
            self.budget.release(self._retained)
            self.budget.discard(self)
            self.budget = None

    def record_exit(self) -> int:
        if self.exited:
            raise ValueError("exit recorded twice")
        self.exit_seq = self._allocate()
        return self.exit_seq

    def record_close(self) -> int:
        if self.closed:
            raise ValueError("close recorded twice")
        self.close_seq = self._allocate()
        if self.budget is not None:
            self.budget.closed(self)
        return self.close_seq

    def has_event_after(self, after_seq: int) -> bool:
        return self.last_seq > after_seq

    def read(
        self,
        after_seq: int = 0,
        max_bytes: int | None = None,
        rule: NextSeqRule = NextSeqRule.AFTER_LAST_CHUNK,
    ) -> ReadView:
        selected: list[Chunk] = []
        total = 0
        for chunk in self._chunks:
            if chunk.seq <= after_seq:
                continue
            if selected and max_bytes is not None and total + len(chunk.data) > max_bytes:
                break
            selected.append(chunk)
            total += len(chunk.data)
            if max_bytes is not None and total >= max_bytes:
                break
        next_seq = self._next_seq
        if selected and (max_bytes is not None or rule is NextSeqRule.AFTER_LAST_CHUNK):
            next_seq = selected[-1].seq + 1
        gap = None
        if self._dropped_through > after_seq and self._chunks:
            gap = self._chunks[0].seq
        elif self._dropped_through > after_seq:
            gap = self._dropped_through + 1
        return ReadView(selected, next_seq, gap)
