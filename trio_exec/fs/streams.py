"""Reading and writing files that are not regular files (FIFOs, character devices) without
holding a thread while they have nothing to give or take.

Rules:
- The descriptor is non-blocking (`blocking.Stream`). A worker thread moves bytes until the
  descriptor would block (EAGAIN), reaches EOF, or is done; the wait for more happens on the
  event loop (`trio.lowlevel.wait_readable` / `wait_writable`), so a FIFO that nobody writes
  costs no thread and no limiter token, and a cancelled request stops at once.
- A FIFO is waited on before its first read: with no writer yet, `read` would say EOF at once,
  where the reference waits for a writer. Once it is readable (data, or a writer came and
  went), EOF is EOF.
- Reads are bounded like regular files: more than 512 MiB (`/dev/zero`, `/dev/urandom`) is
  -32600 `file is too large to read: limit is 536870912 bytes`, and nothing is kept beyond
  the limit.
- Devices that are always ready (`/dev/zero`, `/dev/null`) never reach the loop's wait.

Resource handling: the descriptor is closed here, whatever happens (the loop is told first).
Cancellation: the loop's wait is cancelled at once; a thread step runs to its end (it never
blocks) and its bytes are dropped.
"""

from __future__ import annotations

import errno
import os

import trio

from trio_exec.fs.blocking import FILE_TOO_LARGE, READ_CHUNK, READ_FILE_LIMIT, Stream
from trio_exec.proto.errors import InvalidRequest


def _drain(fd: int, chunks: list[bytes], total: int) -> tuple[int, bool]:
    """Read until EAGAIN or EOF: (bytes held now, EOF seen)."""
    while True:
        try:
            block = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return total, False
        if not block:
            return total, True
        total += len(block)
        if total > READ_FILE_LIMIT:
            raise InvalidRequest(FILE_TOO_LARGE)
        chunks.append(block)


def _push(fd: int, data: memoryview) -> int:
    """Write until EAGAIN or done: how many bytes went."""
    done = 0
    while done < len(data):
        try:
            count = os.write(fd, data[done:])
        except BlockingIOError:
            return done
        if count == 0:
            raise OSError(errno.EIO, "failed to write whole buffer")
        done += count
    return done


async def read_stream(stream: Stream, limiter: trio.CapacityLimiter) -> bytes:
    """Everything `stream` yields up to EOF (see the module rules)."""
    try:
        if stream.is_fifo:
            await trio.lowlevel.wait_readable(stream.fd)
        chunks: list[bytes] = []
        total = 0
        while True:
            total, eof = await trio.to_thread.run_sync(
                _drain, stream.fd, chunks, total, limiter=limiter
            )
            if eof:
                return b"".join(chunks)
            await trio.lowlevel.wait_readable(stream.fd)
    finally:
        _close(stream.fd)


async def write_stream(stream: Stream, data: bytes, limiter: trio.CapacityLimiter) -> None:
    """Write all of `data` to `stream` (see the module rules)."""
    try:
        with memoryview(data) as view:
            while view:
                count = await trio.to_thread.run_sync(_push, stream.fd, view, limiter=limiter)
                view = view[count:]
                if view:
                    await trio.lowlevel.wait_writable(stream.fd)
    finally:
        _close(stream.fd)


def _close(fd: int) -> None:
    trio.lowlevel.notify_closing(fd)
    os.close(fd)
