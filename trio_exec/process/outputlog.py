"""The seq-numbered event log of one process (pure: no trio, no I/O).

Rules:
- One counter per process, starting at 1, shared by output chunks, the exit event and the close
  event; every event takes exactly one number, in the order it is recorded.
- At most `limit` bytes of output are retained; older chunks are dropped whole from the front.
  The exit and close events are never dropped.
- The bytes live in segments of anonymous memory (`segments.py`), a few large ones per log, not
  one heap object per chunk: a dropped chunk's memory returns to the system once its segment
  is empty, and all of it when the process is forgotten (`discard()` drops every chunk). A
  log's segments grow from one page to `SEGMENT_BYTES`, so a short output costs a page. A
  running log keeps one emptied full-size segment as a spare for its next one: a steady
  stream maps, faults in and unmaps nothing once its ring is full. `discard()` unmaps it too.
- With a `budget` (`retention.py`), the log also draws on the daemon-wide budget: it charges
  what it retains, gives back what it drops, and the budget may make it drop more (any chunk,
  the newest too); `discard()` leaves the budget when the process is forgotten.
- `read(after_seq, max_bytes, rule)` follows the references: retained chunks with
  seq > after_seq in ascending order (found by bisection, not a scan); never split; the first is always returned; more are added
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
from collections.abc import Iterator

import attrs

from trio_exec.process.retention import RetentionBudget
from trio_exec.process.segments import PAGE, STREAMS, Segment

DEFAULT_RETAINED_BYTES = 1024 * 1024
#: The largest segment a log opens for chunks smaller than it (bytes, records included); a
#: log's first segment is a page, each next one four times the last, up to this.
SEGMENT_BYTES = 256 * 1024 + PAGE


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
    """Invariants: `_segments` hold the retained chunks in ascending seq, none of them empty;
    `_count` is their number, `_retained` the sum of their sizes, which never exceeds `limit` except for a single chunk
    larger than it; `_dropped_through` is the seq of the newest chunk dropped by the cap (0
    while nothing was dropped)."""

    limit: int = DEFAULT_RETAINED_BYTES
    _segments: deque[Segment] = attrs.field(factory=deque)
    _retained: int = 0
    _count: int = 0  # retained chunks
    _next_seq: int = 1
    _dropped_through: int = 0  # highest output seq dropped by the cap (0: none)
    _last_capacity: int = 0
    _spare: Segment | None = None
    #: Bytes of output appended in all, retained or not.
    written_bytes: int = 0
    #: Set by `discard()`.
    discarded: bool = False
    #: The seq of the newest output chunk (0: none yet), retained or not.
    last_output_seq: int = 0
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
    def mapped_bytes(self) -> int:
        """Memory mapped for the retained chunks and the spare (`segments.py`): resident only
        where written."""
        spare = self._spare.capacity if self._spare is not None else 0
        return spare + sum(segment.capacity for segment in self._segments)

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
        if stream not in STREAMS:
            raise ValueError(f"unknown output stream {stream!r}")
        chunk = Chunk(self._allocate(), stream, data)
        self.last_output_seq = chunk.seq
        self.written_bytes += len(data)
        self._store(chunk)
        self._retained += len(data)
        self._count += 1
        while self._retained > self.limit and self._count > 1:
            self.drop_oldest()
        if self.budget is not None:
            self.budget.charge(len(data))
        return chunk

    def _store(self, chunk: Chunk) -> None:
        if not self._segments or not self._segments[-1].fits(len(chunk.data)):
            grown = min(SEGMENT_BYTES, 4 * self._last_capacity) if self._last_capacity else PAGE
            needed = max(grown, Segment.space_for(len(chunk.data)))
            segment, self._spare = self._spare, None
            if segment is None or segment.capacity < needed:
                if segment is not None:
                    segment.close()
                segment = Segment(needed)
            self._last_capacity = segment.capacity
            self._segments.append(segment)
        self._segments[-1].append(chunk.seq, chunk.stream, chunk.data)

    def drop_oldest(self) -> None:
        """Drop the oldest retained chunk (a read asking for it is told of the gap)."""
        segment = self._segments[0]
        self._dropped_through, size = segment.drop_first()
        if not segment.live:
            self._segments.popleft()
            if self._spare is None and segment.capacity >= SEGMENT_BYTES and not self.discarded:
                segment.reset()
                self._spare = segment
            else:
                segment.close()
        self._retained -= size
        self._count -= 1
        if self.budget is not None:
            self.budget.release(size)

    def discard(self) -> None:
        """The process is forgotten: its retained output is dropped (its memory unmapped) and
        leaves the budget; a read still in flight is told of the gap."""
        self.discarded = True
        while self._segments:
            self.drop_oldest()
        if self._spare is not None:
            self._spare.close()
            self._spare = None
        if self.budget is not None:
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

    def _after(self, after_seq: int) -> Iterator[tuple[Segment, int]]:
        """(segment, record index) of every retained chunk with seq > after_seq, ascending."""
        found = False
        for segment in self._segments:
            if not found and segment.seq(segment.count - 1) <= after_seq:
                continue
            start = segment.first if found else segment.index_after(after_seq)
            found = True
            for index in range(start, segment.count):
                yield segment, index

    def read(
        self,
        after_seq: int = 0,
        max_bytes: int | None = None,
        rule: NextSeqRule = NextSeqRule.AFTER_LAST_CHUNK,
    ) -> ReadView:
        selected: list[Chunk] = []
        total = 0
        for segment, index in self._after(after_seq):
            size = segment.size(index)
            if selected and max_bytes is not None and total + size > max_bytes:
                break
            selected.append(Chunk(*segment.chunk(index)))
            total += size
            if max_bytes is not None and total >= max_bytes:
                break
        next_seq = self._next_seq
        if selected and (max_bytes is not None or rule is NextSeqRule.AFTER_LAST_CHUNK):
            next_seq = selected[-1].seq + 1
        gap = None
        if self._dropped_through > after_seq and self._segments:
            first = self._segments[0]
            gap = first.seq(first.first)
        elif self._dropped_through > after_seq:
            gap = self._dropped_through + 1
        return ReadView(selected, next_seq, gap)
