"""`fs/open`, `fs/readBlock`, `fs/writeBlock`, `fs/close` (0.169): file handles of one connection.

Rules (the codex 0.169.0 exec-server, probed black-box; docs/protocol-dialects.md §2):
- Handles belong to the connection: at most 128 open at once (-32600 ``at most 128 file
  handles may be open per connection``), ids at most 32 bytes of UTF-8 (-32600 ``file handle ID
  must not exceed 32 bytes``), unique while open (-32600 ``file handle `<id>` already
  exists``). Every handle is closed when its connection ends, even if its session lives on
  for a resume (a resumed session does not see them: ``unknown file handle `<id>` ``, -32004).
- `fs/open` `mode` is `read` (the default: an existing regular file, followed) or `replace`
  (created or truncated in place, mode 0666 & ~umask; parents are not created). Anything
  that is not a regular file (a directory, FIFO, device) is -32600 ``path `<path>` is not a
  file`` in both modes, as on the 0.169 and 0.171 references; it is opened without blocking
  (a FIFO nobody writes or reads never holds a thread). The access policy (`sandbox/access.py`,
  from the request's `sandbox` context) is judged at open (read access for `read`, write access
  for `replace`), and a restricted path is opened race-free (`target.py`).
- `fs/readBlock {handleId, offset, len}`: `len` in 1..=1048576 (-32600 ``file read block
  length must be between 1 and 1048576``); up to `len` bytes at `offset` → `{chunk, eof}`,
  `eof` when fewer than `len` bytes were read. A read that fails (an offset past the signed
  64-bit range is -32600 ``Invalid argument (os error 22)``; a handle opened for `replace` is
  -32603 EBADF) also closes the handle.
- `fs/writeBlock {handleId, offset, chunk}`: 1..=1048576 bytes written at `offset` (the file
  grows with zeros as needed) → `{}`; an end beyond the signed 64-bit range is -32600 ``file
  write range exceeds the signed 64-bit file offset limit``. A failed write leaves the handle
  open (writing a `read` handle is -32603 EBADF).
- `fs/close {handleId}` → `{}`, also for an unknown or already-closed handle.
- Unknown handles are -32004 ``unknown file handle `<id>` ``.

Every descriptor operation runs in a worker thread that is never abandoned, so a descriptor
is not closed under a running read or write.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import TypeVar

import attrs
import trio

from trio_exec.fs.blocking import not_a_file
from trio_exec.fs.local import FS_THREADS, judge, refuse_nul
from trio_exec.fs.target import Target, open_target
from trio_exec.proto.errors import InvalidRequest, NotFound, from_os_error, os_error_text
from trio_exec.sandbox.access import AccessPolicy
from trio_exec.sandbox.policy import Access, ServerPaths

T = TypeVar("T")

MAX_HANDLES = 128
MAX_HANDLE_ID_BYTES = 32
MAX_BLOCK = 1024 * 1024
MAX_OFFSET = 2**63 - 1

READ = "read"
REPLACE = "replace"


def unknown_handle(handle_id: str) -> NotFound:
    return NotFound(f"unknown file handle `{handle_id}`")


_NO_WAIT = os.O_NONBLOCK | os.O_NOCTTY


def _open_regular(target: Target, flags: int) -> int:
    """`target` opened without blocking; -32600 unless it is a regular file."""
    try:
        fd = open_target(target, flags | _NO_WAIT, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a FIFO without a reader, opened for writing
            raise not_a_file(target.given) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise not_a_file(target.given)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_read(target: Target) -> int:
    return _open_regular(target, os.O_RDONLY)


def _open_replace(target: Target) -> int:
    fd = _open_regular(target, os.O_WRONLY | os.O_CREAT)
    try:
        os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_block(fd: int, offset: int, length: int) -> bytes:
    if offset > MAX_OFFSET:
        raise InvalidRequest(os_error_text(OSError(errno.EINVAL, "")))
    parts: list[bytes] = []
    got = 0
    while got < length:
        part = os.pread(fd, length - got, offset + got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _write_block(fd: int, offset: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


@attrs.define(eq=False)
class _Handle:
    """One descriptor; closed once it is released and no operation is using it."""

    fd: int
    limiter: trio.CapacityLimiter
    users: int = 0
    released: bool = False

    def release(self) -> None:
        self.released = True
        self._maybe_close()

    def _maybe_close(self) -> None:
        if self.released and self.users == 0 and self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    async def run(self, work: Callable[[int], T]) -> T:
        self.users += 1
        try:
            return await trio.to_thread.run_sync(work, self.fd, limiter=self.limiter)
        finally:
            self.users -= 1
            self._maybe_close()


@attrs.define(eq=False)
class FileHandles:
    """The open handles of one connection (id → descriptor)."""

    server: ServerPaths = attrs.field(factory=ServerPaths.from_process)
    #: The filesystem's worker threads (`LocalFilesystem.threads`).
    threads: trio.CapacityLimiter = attrs.field(
        factory=lambda: trio.CapacityLimiter(FS_THREADS)
    )
    _handles: dict[str, _Handle] = attrs.field(factory=dict)
    _closed: bool = False

    def __len__(self) -> int:
        return len(self._handles)

    def _get(self, handle_id: str) -> _Handle:
        handle = self._handles.get(handle_id)
        if handle is None:
            raise unknown_handle(handle_id)
        return handle

    async def open(self, handle_id: str, path: str, mode: str, policy: AccessPolicy) -> None:
        if len(handle_id.encode()) > MAX_HANDLE_ID_BYTES:
            raise InvalidRequest(f"file handle ID must not exceed {MAX_HANDLE_ID_BYTES} bytes")
        if handle_id in self._handles:
            raise InvalidRequest(f"file handle `{handle_id}` already exists")
        if len(self._handles) >= MAX_HANDLES:
            raise InvalidRequest(
                f"at most {MAX_HANDLES} file handles may be open per connection"
            )
        refuse_nul(path)
        access = Access.READ if mode == READ else Access.WRITE
        opener = _open_read if mode == READ else _open_replace

        def work() -> int:
            try:
                target = judge(policy, path, access, self.server, follow_leaf=True)
                try:
                    return opener(target)
                except OSError as exc:
                    if exc.errno == errno.ELOOP and target.confined:
                        judge(policy, path, access, self.server, follow_leaf=True)
                    raise
            except OSError as exc:
                raise from_os_error(exc) from exc

        fd = await trio.to_thread.run_sync(work, limiter=self.threads)
        # Re-checked after the thread: a concurrent open of the same id, or the connection
        # ending meanwhile, must not leak the new descriptor.
        if self._closed or handle_id in self._handles or len(self._handles) >= MAX_HANDLES:
            os.close(fd)
            if self._closed:
                raise unknown_handle(handle_id)
            if handle_id in self._handles:
                raise InvalidRequest(f"file handle `{handle_id}` already exists")
            raise InvalidRequest(
                f"at most {MAX_HANDLES} file handles may be open per connection"
            )
        self._handles[handle_id] = _Handle(fd, self.threads)

    async def read_block(self, handle_id: str, offset: int, length: int) -> tuple[bytes, bool]:
        if not 1 <= length <= MAX_BLOCK:
            raise InvalidRequest(f"file read block length must be between 1 and {MAX_BLOCK}")
        handle = self._get(handle_id)

        def work(fd: int) -> bytes:
            try:
                return _read_block(fd, offset, length)
            except OSError as exc:
                raise from_os_error(exc) from exc

        try:
            data = await handle.run(work)
        except BaseException:
            self._discard(handle_id, handle)
            raise
        return data, len(data) < length

    async def write_block(self, handle_id: str, offset: int, data: bytes) -> None:
        if not 1 <= len(data) <= MAX_BLOCK:
            raise InvalidRequest(f"file write block length must be between 1 and {MAX_BLOCK}")
        handle = self._get(handle_id)
        if offset + len(data) > MAX_OFFSET:
            raise InvalidRequest("file write range exceeds the signed 64-bit file offset limit")

        def work(fd: int) -> None:
            try:
                _write_block(fd, offset, data)
            except OSError as exc:
                raise from_os_error(exc) from exc

        await handle.run(work)

    def _discard(self, handle_id: str, handle: _Handle) -> None:
        if self._handles.get(handle_id) is handle:
            del self._handles[handle_id]
            handle.release()

    def close(self, handle_id: str) -> None:
        handle = self._handles.pop(handle_id, None)
        if handle is not None:
            handle.release()

    def close_all(self) -> None:
        """At the connection's end: every descriptor closed (once no operation uses it),
        later opens refused."""
        self._closed = True
        handles, self._handles = self._handles, {}
        for handle in handles.values():
            handle.release()
