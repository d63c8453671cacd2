"""`LocalFilesystem`: the one local implementation of the `fs/*` service.

Rule: every operation is its sandbox check followed by the operation, both run together in a
worker thread (`handoff.py`: trio's thread cache without `trio.to_thread`'s general machinery),
so the event loop never waits on the disk, however large the file. The threads
come from the filesystem's own `CapacityLimiter` (`threads`), not trio's default one, so
filesystem work never queues a `process/start` behind it; no operation blocks a thread on a
FIFO or device (they are opened non-blocking and waited for on the loop, `streams.py`).
Failures come out as the wire's `RpcError`s: the protocol's refusals as `InvalidRequest`, OS
errors through `from_os_error` (ENOENT → -32004, the rest → -32603, Rust's texts). A NUL byte
in a path is -32600 ``file name contained an unexpected NUL byte`` (the 0.120 reference's
answer; a `file:` URI with one is refused earlier, by `proto/uri.py`). The daemon's `fs/*`
handlers and the local `Environment` both call this class.

A check that restricts the path gives the operation a confined target (`target.py`): the
resolved path, walked without following symlinks, so a symlink swapped in after the check
cannot take the operation elsewhere. Such a walk that meets a symlink (ELOOP) is judged again:
a path that now leads out of the roots gets the policy's refusal, anything else the ELOOP.

Access: every method takes ONE `policy` (`sandbox/access.py`, default `UNRESTRICTED`), which
judges each path it touches once. Behaviours that are not access are named keyword parameters
(`regular_only` reads, `detailed` metadata, `omit_dangling` directory entries); which ones a
request gets, and which policy, is decided by `rpc/fs_methods.py`: this class knows no
dialect.

Cancellation: every method returns promptly when cancelled: the worker thread is abandoned
(an operation that already started may still complete in the background), except for
readFile and writeFile, whose thread may hand back an open descriptor and is waited for (it
never blocks: at most the time to read or write 512 MiB).
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs
import trio

from trio_exec.fs import blocking, streams
from trio_exec.fs.handoff import Handoff
from trio_exec.fs.target import Target
from trio_exec.fs.walk import WalkLimits, WalkOutcome, walk
from trio_exec.proto.errors import InvalidRequest, from_os_error
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.sandbox.access import UNRESTRICTED, AccessPolicy
from trio_exec.sandbox.policy import Access, ServerPaths

T = TypeVar("T")


def _directory_entry(name: str, is_directory: bool, is_file: bool) -> FsDirectoryEntry:
    return FsDirectoryEntry(file_name=name, is_directory=is_directory, is_file=is_file)

#: (path, access, follow the last component)
Check = tuple[str, Access, bool]

#: Worker threads for filesystem work at once (trio's default limiter, left to everything
#: else, has 40).
FS_THREADS = 16
NUL_IN_PATH = "file name contained an unexpected NUL byte"
#: How often a writeFile to a FIFO that nobody reads looks for a reader (no thread waits).
FIFO_READER_POLL = 0.05


def refuse_nul(path: str) -> None:
    if "\x00" in path:
        raise InvalidRequest(NUL_IN_PATH)


def judge(
    policy: AccessPolicy, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
) -> Target:
    """The target of an operation on `path` once `policy` allows it. Blocks."""
    resolved = policy.judge(path, access, server, follow_leaf=follow_leaf)
    if resolved is None:
        return Target(path)
    return Target(resolved, confined=True, given=path)


def _cwd_default() -> str:
    return ServerPaths.from_process().cwd


def _tmpdir_default() -> str | None:
    return ServerPaths.from_process().tmpdir


@attrs.define(eq=False)
class LocalFilesystem:
    """The local filesystem behind the `fs/*` methods.

    `cwd` and `tmpdir` are the server's working directory and `$TMPDIR` that the sandbox
    policies refer to; they default to the process's own, captured at construction and fixed
    for the object's lifetime.
    """

    cwd: str = attrs.field(factory=_cwd_default)
    tmpdir: str | None = attrs.field(factory=_tmpdir_default)
    #: The worker threads of filesystem work (see the module rule).
    threads: trio.CapacityLimiter = attrs.field(
        factory=lambda: trio.CapacityLimiter(FS_THREADS)
    )
    _server: ServerPaths = attrs.field(init=False)
    _handoff: Handoff = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._server = ServerPaths(cwd=self.cwd, tmpdir=self.tmpdir)
        self._handoff = Handoff(self.threads)

    async def _run(
        self,
        policy: AccessPolicy,
        checks: list[Check],
        operation: Callable[[Sequence[Target]], T],
        *,
        abandon: bool = True,
    ) -> T:
        for path, _, _ in checks:
            refuse_nul(path)

        def targets() -> list[Target]:
            return [
                judge(policy, path, access, self._server, follow_leaf=follow_leaf)
                for path, access, follow_leaf in checks
            ]

        def work() -> T:
            try:
                judged = targets()
                try:
                    return operation(judged)
                except OSError as exc:
                    if exc.errno == errno.ELOOP and any(t.confined for t in judged):
                        targets()  # a symlink met on a confined walk: judged again
                    raise
            except OSError as exc:
                raise from_os_error(exc) from exc

        return await self._handoff.run(work, abandon=abandon)

    async def read_file(
        self,
        path: str,
        *,
        policy: AccessPolicy = UNRESTRICTED,
        regular_only: bool = False,
    ) -> bytes:
        """The file's bytes (symlinks followed); -32600 when larger than 512 MiB.
        `regular_only`: anything but a regular file is -32600 ``path `<path>` is not a file``."""
        opened = await self._run(
            policy,
            [(path, Access.READ, True)],
            lambda t: blocking.read_file(t[0], regular_only=regular_only),
            abandon=False,  # its result may be an open descriptor
        )
        if isinstance(opened, blocking.Stream):
            return await self._stream(streams.read_stream(opened, self.threads))
        return opened

    async def _stream(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except OSError as exc:
            raise from_os_error(exc) from exc

    async def write_file(
        self,
        path: str,
        data: bytes,
        *,
        policy: AccessPolicy = UNRESTRICTED,
    ) -> None:
        """Create `path` or replace its content with `data`; parents are not created. A FIFO
        is written once a reader has it open (looked for every `FIFO_READER_POLL` s, on the
        loop, until then or until cancelled)."""
        while True:
            try:
                opened = await self._run(
                    policy,
                    [(path, Access.WRITE, True)],
                    lambda t: blocking.write_file(t[0], data),
                    abandon=False,  # its result may be an open descriptor
                )
                break
            except blocking.NoReaderYet:
                await trio.sleep(FIFO_READER_POLL)
        if opened is not None:
            await self._stream(streams.write_stream(opened, data, self.threads))

    async def create_directory(
        self,
        path: str,
        *,
        recursive: bool = True,
        policy: AccessPolicy = UNRESTRICTED,
    ) -> None:
        """`mkdir -p` (the default), or a single `mkdir` when not `recursive`."""
        await self._run(
            policy,
            [(path, Access.WRITE, True)],
            lambda t: blocking.create_directory(t[0], recursive=recursive),
        )

    async def get_metadata(
        self,
        path: str,
        *,
        policy: AccessPolicy = UNRESTRICTED,
        detailed: bool = False,
    ) -> FsGetMetadataResult:
        """Type and times of `path` (symlinks followed); `detailed` adds `isSymlink`, `size`."""
        return await self._run(
            policy,
            [(path, Access.READ, True)],
            lambda t: blocking.get_metadata(t[0], detailed=detailed),
        )

    async def read_directory(
        self,
        path: str,
        *,
        policy: AccessPolicy = UNRESTRICTED,
        omit_dangling: bool = False,
    ) -> list[FsDirectoryEntry]:
        """The entries of directory `path`, in readdir order."""
        return await self.list_directory(
            path, _directory_entry, policy=policy, omit_dangling=omit_dangling
        )

    async def list_directory(
        self,
        path: str,
        entry: Callable[[str, bool, bool], T],
        *,
        policy: AccessPolicy = UNRESTRICTED,
        omit_dangling: bool = False,
    ) -> list[T]:
        """`entry(name, is_directory, is_file)` for each entry of `path`, in readdir order,
        built in the worker thread while scanning (a large listing never costs the loop)."""
        return await self._run(
            policy,
            [(path, Access.READ, True)],
            lambda t: blocking.read_directory(t[0], entry, omit_dangling=omit_dangling),
        )

    async def canonicalize(self, path: str, *, policy: AccessPolicy = UNRESTRICTED) -> str:
        """`path` with every symlink resolved; the path must exist."""
        return await self._run(
            policy, [(path, Access.READ, True)], lambda t: blocking.canonicalize(t[0])
        )

    async def walk(
        self, path: str, limits: WalkLimits, *, policy: AccessPolicy = UNRESTRICTED
    ) -> WalkOutcome:
        """`fs/walk` (`fs/walk.py` states the rules); the limits are judged first."""
        limits.check()
        return await self._run(policy, [(path, Access.READ, True)], lambda t: walk(t[0], limits))

    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        policy: AccessPolicy = UNRESTRICTED,
    ) -> None:
        """Remove `path` itself (a symlink is unlinked); `force` ignores a missing path."""
        await self._run(
            policy,
            [(path, Access.WRITE, False)],
            lambda t: blocking.remove(t[0], recursive=recursive, force=force),
        )

    async def copy(
        self,
        source: str,
        destination: str,
        *,
        recursive: bool,
        policy: AccessPolicy = UNRESTRICTED,
    ) -> None:
        """Copy a file, a symlink (as a symlink) or, with `recursive`, a directory tree."""
        await self._run(
            policy,
            [(source, Access.READ, False), (destination, Access.WRITE, True)],
            lambda t: blocking.copy(t[0], t[1], recursive=recursive),
        )
