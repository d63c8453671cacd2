"""Where an output log keeps its bytes: segments of anonymous memory, given back when released.

Rules:
- A segment is one private anonymous memory map, never memory of the allocator's heap: when its
  last chunk is dropped it is unmapped and its pages return to the system at once. (Retained
  output in heap blocks stays resident after it is freed: blocks of other, long-lived objects
  allocated meanwhile pin the heap, which glibc shrinks only from its top.)
- A segment is a slotted page: the chunks' bytes from the front, one record per chunk (its seq,
  where its bytes end, its stream) from the back. A chunk lies whole in one segment; chunks are
  appended in ascending seq and dropped from the front only.
- Only the pages written count: a map larger than what it holds costs address space, not memory.
- An empty segment is unmapped, or kept by its log as its one spare (`outputlog.py`).
- Children do not inherit segments (`MADV_DONTFORK`): a fork copies no page table of them.
- Reads copy the bytes out; nothing outside holds a view into a map, so it can always be closed.
"""

from __future__ import annotations

import mmap
import struct

#: seq, end offset of the chunk's bytes, stream index (16 bytes with padding).
_RECORD = struct.Struct("<qIB3x")
RECORD_SIZE = _RECORD.size
STREAMS = ("stdout", "stderr", "pty")
_STREAM_INDEX = {name: index for index, name in enumerate(STREAMS)}
PAGE = mmap.PAGESIZE


class Segment:
    """Invariants: records `first` .. `count - 1` are the live chunks, in ascending seq; the
    bytes of record i are `[end(i - 1), end(i))` (from 0 for i = 0); `_data_end` plus the
    records' space never exceeds `capacity`."""

    __slots__ = ("_data_end", "_map", "capacity", "count", "first")

    def __init__(self, capacity: int) -> None:
        self.capacity = -(-capacity // PAGE) * PAGE
        self._map = mmap.mmap(-1, self.capacity, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_DONTFORK"):
            self._map.madvise(mmap.MADV_DONTFORK)
        self._data_end = 0
        self.count = 0
        self.first = 0

    @staticmethod
    def space_for(size: int) -> int:
        """Bytes a chunk of `size` bytes takes in a segment, its record included."""
        return size + RECORD_SIZE

    def fits(self, size: int) -> bool:
        used = self._data_end + (self.count + 1) * RECORD_SIZE
        return used + size <= self.capacity

    def append(self, seq: int, stream: str, data: bytes) -> None:
        index = _STREAM_INDEX.get(stream)
        if index is None:
            raise ValueError(f"unknown output stream {stream!r}")
        if not self.fits(len(data)):
            raise ValueError("chunk does not fit the segment")
        end = self._data_end + len(data)
        self._map[self._data_end:end] = data
        self._data_end = end
        self.count += 1
        _RECORD.pack_into(self._map, self.capacity - self.count * RECORD_SIZE, seq, end, index)

    def _record(self, i: int) -> tuple[int, int, int]:
        seq, end, stream = _RECORD.unpack_from(self._map, self.capacity - (i + 1) * RECORD_SIZE)
        return seq, end, stream

    def _start(self, i: int) -> int:
        return self._record(i - 1)[1] if i else 0

    @property
    def live(self) -> int:
        return self.count - self.first

    def seq(self, i: int) -> int:
        return self._record(i)[0]

    def size(self, i: int) -> int:
        return self._record(i)[1] - self._start(i)

    def chunk(self, i: int) -> tuple[int, str, bytes]:
        """(seq, stream, a copy of the bytes) of record i."""
        seq, end, stream = self._record(i)
        return seq, STREAMS[stream], self._map[self._start(i):end]

    def index_after(self, after_seq: int) -> int:
        """The first live record with seq > `after_seq` (`count` if none)."""
        lo, hi = self.first, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.seq(mid) <= after_seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def drop_first(self) -> tuple[int, int]:
        """Drop the oldest live chunk: (its seq, its size)."""
        seq, size = self.seq(self.first), self.size(self.first)
        self.first += 1
        return seq, size

    def reset(self) -> None:
        """Empty the segment for reuse (its pages stay mapped and written)."""
        self._data_end = self.count = self.first = 0

    def close(self) -> None:
        self._map.close()

    @property
    def closed(self) -> bool:
        return self._map.closed
