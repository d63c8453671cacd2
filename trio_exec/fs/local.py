"""`LocalFilesystem`: the one local implementation of the `fs/*` service.

Rule: every operation is its sandbox check followed by the operation, both run together in a
worker thread (`trio.to_thread.run_sync`), so the event loop never waits on the disk, however
large the file. Failures come out as the wire's `RpcError`s: the protocol's refusals as
`InvalidRequest`, OS errors through `from_os_error` (ENOENT → -32004, the rest → -32603, Rust's
texts). The daemon's `fs/*` handlers and the local `Environment` both call this class.

Dialects: `sandbox` is the 0.120 `SandboxPolicy` (checked by `policy.check`), `context` the
0.169 `SandboxContext` (checked by `context_policy.check`); a caller passes at most one. The
keyword flags select the 0.169 behaviours (`detailed` metadata, `omit_dangling` directory
entries, `refuse_directory` reads).

Cancellation: every method returns promptly when cancelled (the worker thread is abandoned);
an operation that already started may still complete in the background.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import attrs
import trio

from trio_exec.proto.errors import from_os_error
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.sandbox_context import SandboxContext

from . import blocking, context_policy
from .policy import Access, ServerPaths, check
from .walk import WalkLimits, WalkOutcome, walk

T = TypeVar("T")

#: (path, access, follow the last component)
Check = tuple[str, Access, bool]


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
    _server: ServerPaths = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._server = ServerPaths(cwd=self.cwd, tmpdir=self.tmpdir)

    async def _run(
        self,
        sandbox: SandboxPolicy | None,
        checks: list[Check],
        operation: Callable[[], T],
        context: SandboxContext | None = None,
    ) -> T:
        def work() -> T:
            try:
                for path, access, follow_leaf in checks:
                    check(sandbox, path, access, self._server, follow_leaf=follow_leaf)
                    context_policy.check(
                        context, path, access, self._server, follow_leaf=follow_leaf
                    )
                return operation()
            except OSError as exc:
                raise from_os_error(exc) from exc

        return await trio.to_thread.run_sync(work, abandon_on_cancel=True)

    async def read_file(
        self,
        path: str,
        *,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
        refuse_directory: bool = False,
    ) -> bytes:
        """The file's bytes (symlinks followed); -32600 when larger than 512 MiB."""
        return await self._run(
            sandbox,
            [(path, Access.READ, True)],
            lambda: blocking.read_file(path, refuse_directory=refuse_directory),
            context,
        )

    async def write_file(
        self,
        path: str,
        data: bytes,
        *,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
    ) -> None:
        """Create `path` or replace its content with `data`; parents are not created."""
        await self._run(
            sandbox,
            [(path, Access.WRITE, True)],
            lambda: blocking.write_file(path, data),
            context,
        )

    async def create_directory(
        self,
        path: str,
        *,
        recursive: bool = True,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
    ) -> None:
        """`mkdir -p` (the default), or a single `mkdir` when not `recursive`."""
        await self._run(
            sandbox,
            [(path, Access.WRITE, True)],
            lambda: blocking.create_directory(path, recursive=recursive),
            context,
        )

    async def get_metadata(
        self,
        path: str,
        *,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
        detailed: bool = False,
    ) -> FsGetMetadataResult:
        """Type and times of `path` (symlinks followed); `detailed` adds `isSymlink`, `size`."""
        return await self._run(
            sandbox,
            [(path, Access.READ, True)],
            lambda: blocking.get_metadata(path, detailed=detailed),
            context,
        )

    async def read_directory(
        self,
        path: str,
        *,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
        omit_dangling: bool = False,
    ) -> list[FsDirectoryEntry]:
        """The entries of directory `path`, in readdir order."""
        return await self._run(
            sandbox,
            [(path, Access.READ, True)],
            lambda: blocking.read_directory(path, omit_dangling=omit_dangling),
            context,
        )

    async def canonicalize(
        self, path: str, *, context: SandboxContext | None = None
    ) -> str:
        """`path` with every symlink resolved; the path must exist."""
        return await self._run(
            None, [(path, Access.READ, True)], lambda: os.path.realpath(path, strict=True),
            context,
        )

    async def walk(
        self, path: str, limits: WalkLimits, *, context: SandboxContext | None = None
    ) -> WalkOutcome:
        """`fs/walk` (`fs/walk.py` states the rules); the limits are judged first."""
        limits.check()
        return await self._run(
            None, [(path, Access.READ, True)], lambda: walk(path, limits), context
        )

    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
    ) -> None:
        """Remove `path` itself (a symlink is unlinked); `force` ignores a missing path."""
        await self._run(
            sandbox,
            [(path, Access.WRITE, False)],
            lambda: blocking.remove(path, recursive=recursive, force=force),
            context,
        )

    async def copy(
        self,
        source: str,
        destination: str,
        *,
        recursive: bool,
        sandbox: SandboxPolicy | None = None,
        context: SandboxContext | None = None,
    ) -> None:
        """Copy a file, a symlink (as a symlink) or, with `recursive`, a directory tree."""
        await self._run(
            sandbox,
            [(source, Access.READ, False), (destination, Access.WRITE, True)],
            lambda: blocking.copy(source, destination, recursive=recursive),
            context,
        )
