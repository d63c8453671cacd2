"""Durable output: each process's output also appended to files on disk (`--output-spool-dir`).

Rules:
- Off unless a directory is configured. The directory is the daemon's own: at start it is
  created (mode 0700) and every spool file left in it by an earlier run is removed.
- Per process two files, named by a random token (never by the client's process id): `.out`
  holds the chunks' bytes back to back, `.idx` one 24-byte record per chunk (seq, end offset in
  `.out`, stream). A record is written only after its bytes, so a record never points past the
  data.
- Writing never blocks the event loop: `offer()` only queues the chunk; the writer task writes
  what is queued in a worker thread, a batch at a time. The pump waits (`wait_backlog`) while
  more than `BACKLOG_BYTES` are queued, so a slow disk slows the child's output down instead of
  growing memory.
- Caps: a process's spool stops taking chunks once one would exceed `process_bytes`, or the
  spools of every process together `total_bytes` (what it queued before is still written); a
  write that fails (disk full, I/O error) stops it too, and what was queued is dropped. A
  stopped spool keeps what it wrote and says why in the log, once; reads beyond it report the
  retention gap as without a spool. Output keeps flowing either way.
- A read whose chunks the ring no longer holds (`outputlog.py`) is served here, after the chunks
  queued before it are written: chunks with seq > after_seq, whole, ascending; the first always;
  more while within `max_bytes`, or within `READ_BYTES` without it (a reply stays the size of
  a ring's). The caller applies the dialect's `nextSeq` rule (`managed.py`).
- The files are removed when the process is forgotten or its supervision ends; the bytes leave
  the total then. Files are closed only when no worker thread uses them.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import struct
from pathlib import Path

import attrs
import trio

from trio_exec.process.outputlog import DEFAULT_RETAINED_BYTES, Chunk
from trio_exec.process.segments import STREAMS

log = logging.getLogger(__name__)

DEFAULT_PROCESS_BYTES = 1024 * 1024 * 1024
DEFAULT_TOTAL_BYTES = 16 * 1024 * 1024 * 1024
#: Bytes queued for the disk beyond which the pump waits.
BACKLOG_BYTES = 8 * 1024 * 1024
#: The most a read without `max_bytes` returns from the spool (the size of a ring).
READ_BYTES = DEFAULT_RETAINED_BYTES
_RECORD = struct.Struct("<qQB7x")
_SUFFIXES = (".out", ".idx")
#: The name of a spool file: the token `open` draws, then a suffix (nothing else is ever removed).
_SPOOL_FILE = re.compile(r"[0-9a-f]{16}\.(?:out|idx)")


@attrs.define(eq=False)
class SpoolDirectory:
    """The daemon's spool: where the files go and the total cap. Invariant: `used` is the sum
    of the bytes every open process spool wrote or has queued."""

    path: Path
    process_bytes: int = DEFAULT_PROCESS_BYTES
    total_bytes: int = DEFAULT_TOTAL_BYTES
    used: int = 0

    def prepare(self) -> int:
        """Create the directory and remove stale spool files (named as `open` names them: an
        operator's own files in the directory stay); how many were removed."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        removed = 0
        for entry in self.path.iterdir():
            if _SPOOL_FILE.fullmatch(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)
                removed += 1
        return removed

    def open(self, label: str) -> ProcessSpool:
        """A new spool for one process (`label` names it in the log). Raises `OSError`."""
        name = secrets.token_hex(8)
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        data_fd = os.open(self.path / f"{name}.out", flags, 0o600)
        try:
            index_fd = os.open(self.path / f"{name}.idx", flags, 0o600)
        except OSError:
            os.close(data_fd)
            (self.path / f"{name}.out").unlink(missing_ok=True)
            raise
        return ProcessSpool(self, label, self.path / name, data_fd, index_fd)


@attrs.define(eq=False)
class ProcessSpool:
    """Invariants: `_written` data bytes and `_records` index records are on disk, the newest
    with seq `written_seq`; `_queue` holds the chunks offered and not yet written, `_queued`
    their bytes; `_charged` = `_written` + `_queued` is what this spool counts in the
    directory's `used`; `stopped` is None while it takes chunks, else why it stopped;
    `_failed` is set once a write failed (nothing is written after)."""

    directory: SpoolDirectory
    label: str
    _stem: Path
    _data_fd: int
    _index_fd: int
    written_seq: int = 0
    stopped: str | None = None
    _written: int = 0
    _records: int = 0
    _queue: list[Chunk] = attrs.field(factory=list)
    _queued: int = 0
    _charged: int = 0
    _offered_seq: int = 0
    _wanted: trio.Event = attrs.field(factory=trio.Event)
    _progress: trio.Event = attrs.field(factory=trio.Event)
    _users: int = 0  # worker threads using the fds
    _failed: bool = False
    _removed: bool = False

    # --- writing -------------------------------------------------------------------------

    def offer(self, chunk: Chunk) -> None:
        """Queue `chunk` for the disk, or stop the spool at a cap."""
        if self.stopped is not None or self._removed:
            return
        size = len(chunk.data)
        if self._charged + size > self.directory.process_bytes:
            self._stop(f"its cap of {self.directory.process_bytes} bytes per process reached",
                       self._offered_seq)
            return
        if self.directory.used + size > self.directory.total_bytes:
            self._stop(f"the cap of {self.directory.total_bytes} bytes in total reached",
                       self._offered_seq)
            return
        self._queue.append(chunk)
        self._queued += size
        self._charged += size
        self.directory.used += size
        self._offered_seq = chunk.seq
        self._wanted.set()

    async def wait_backlog(self) -> None:
        """Wait while more than `BACKLOG_BYTES` wait for the disk."""
        while self._queued > BACKLOG_BYTES and not self._failed and not self._removed:
            await self._progress.wait()

    async def run(self) -> None:
        """The writer: write what is queued, a batch at a time, until removed (cancel to end)."""
        while not self._removed:
            await self._wanted.wait()
            self._wanted = trio.Event()
            if self._failed or self._removed or not self._queue:
                self._notify_progress()
                continue
            batch, self._queue = self._queue, []
            self._users += 1
            try:
                await trio.to_thread.run_sync(self._write, batch, self._written, self._records)
            except OSError as exc:
                self._failed = True
                self._drop_queued()
                self._stop(f"a write failed: {exc.strerror or exc}", self.written_seq)
            else:
                size = sum(len(c.data) for c in batch)
                self._queued -= size
                self._written += size
                self._records += len(batch)
                self.written_seq = batch[-1].seq
            finally:
                self._users -= 1
                self._close_if_removed()
            self._notify_progress()

    def _write(self, batch: list[Chunk], offset: int, records: int) -> None:
        """Worker thread: append `batch` at `offset` (its records at `records`)."""
        index = bytearray()
        end = offset
        for chunk in batch:
            end += len(chunk.data)
            index += _RECORD.pack(chunk.seq, end, STREAMS.index(chunk.stream))
        _write_all(self._data_fd, b"".join(c.data for c in batch), offset)
        _write_all(self._index_fd, bytes(index), records * _RECORD.size)

    def _notify_progress(self) -> None:
        self._progress.set()
        self._progress = trio.Event()

    def _drop_queued(self) -> None:
        """What is queued will not be written: it leaves the counts."""
        unwritten = self._charged - self._written
        self._charged -= unwritten
        self.directory.used -= unwritten
        self._queue.clear()
        self._queued = 0

    def _stop(self, reason: str, kept_through: int) -> None:
        if self.stopped is None:
            self.stopped = reason
            log.warning("%s: output spool stopped (%s); output older than the ring's is kept "
                        "up to seq %d", self.label, reason, kept_through)
        self._notify_progress()

    # --- reading -------------------------------------------------------------------------

    async def read(self, after_seq: int, max_bytes: int | None) -> list[Chunk]:
        """Spooled chunks with seq > `after_seq` (the module's read rule), once the chunks
        queued before this call are written."""
        target = self._offered_seq
        while self.written_seq < target and not self._failed and not self._removed:
            await self._progress.wait()
        if self._removed or self.written_seq <= after_seq:
            return []
        limit = READ_BYTES if max_bytes is None else max_bytes
        self._users += 1
        try:
            return await trio.to_thread.run_sync(self._read, after_seq, limit, self._records)
        except OSError as exc:
            log.warning("%s: cannot read its output spool: %s", self.label, exc)
            return []
        finally:
            self._users -= 1
            self._close_if_removed()

    def _record(self, i: int) -> tuple[int, int, int]:
        raw = os.pread(self._index_fd, _RECORD.size, i * _RECORD.size)
        seq, end, stream = _RECORD.unpack(raw)
        return seq, end, stream

    def _read(self, after_seq: int, limit: int, records: int) -> list[Chunk]:
        """Worker thread: the read over the first `records` records."""
        lo, hi = 0, records
        while lo < hi:  # the first record with seq > after_seq
            mid = (lo + hi) // 2
            if self._record(mid)[0] <= after_seq:
                lo = mid + 1
            else:
                hi = mid
        if lo == records:
            return []
        start = self._record(lo - 1)[1] if lo else 0
        selected: list[tuple[int, int, int]] = []
        total = 0
        batch = 4096
        i = lo
        while i < records:
            raw = os.pread(self._index_fd, batch * _RECORD.size, i * _RECORD.size)
            for seq, end, stream in _RECORD.iter_unpack(raw):
                size = end - (selected[-1][1] if selected else start)
                if selected and total + size > limit:
                    return self._chunks(start, selected)
                selected.append((seq, end, stream))
                total += size
                if total >= limit:
                    return self._chunks(start, selected)
            i += batch
        return self._chunks(start, selected)

    def _chunks(self, start: int, selected: list[tuple[int, int, int]]) -> list[Chunk]:
        data = _read_all(self._data_fd, selected[-1][1] - start, start)
        chunks = []
        offset = start
        for seq, end, stream in selected:
            chunks.append(Chunk(seq, STREAMS[stream], data[offset - start:end - start]))
            offset = end
        return chunks

    # --- removal -------------------------------------------------------------------------

    def remove(self) -> None:
        """The process is forgotten: the files go, their bytes leave the total."""
        if self._removed:
            return
        self._removed = True
        self.directory.used -= self._charged
        self._charged = 0
        self._queue.clear()
        self._queued = 0
        for suffix in _SUFFIXES:
            try:
                os.unlink(self._stem.with_suffix(suffix))
            except OSError as exc:
                log.warning("%s: cannot remove its output spool file: %s", self.label, exc)
        self._wanted.set()
        self._notify_progress()
        self._close_if_removed()

    def _close_if_removed(self) -> None:
        if self._removed and not self._users and self._data_fd >= 0:
            os.close(self._data_fd)
            os.close(self._index_fd)
            self._data_fd = self._index_fd = -1

    @property
    def removed(self) -> bool:
        return self._removed


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _read_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size:
        data = os.pread(fd, size, offset)
        if not data:
            raise OSError("spool file shorter than its index")
        parts.append(data)
        size -= len(data)
        offset += len(data)
    return b"".join(parts)
