"""The local environment: this machine, through the daemon's own process and fs code.

Rule: no second implementation. Processes are spawned, logged and controlled by the same
`ProcessTable` / `ManagedProcess` / `spawn` the daemon's sessions use (a local environment is,
in effect, one session without a connection); files go through the daemon's `LocalFilesystem`.
What the wire layer does before those calls (the absolute-path rule of `fs/*`, the `argv`
check of `process/start`) is applied here with the same converter and texts, so local and
remote cannot drift. Output is followed with the `OutputCursor` over `ManagedProcess.read`
long-polls, exactly as a remote client follows `process/read`; the reads and events are the
process's own domain values (bytes, no base64), which the cursor takes as they are.

Cancellation: closing `open_local_environment` kills and reaps every process it started; a
`receive()` or `wait()` still waiting on one of them (or called later) raises `ProcessLost`,
as a remote process's does when its client is closed.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from trio_exec.client.cursor import Output, OutputCursor, OutputIterator
from trio_exec.client.errors import ClientError, OutputLost, ProcessLost
from trio_exec.environment.base import Capabilities, Environment
from trio_exec.fs.local import LocalFilesystem
from trio_exec.process.events import ProcessEvent, ProcessRead
from trio_exec.process.managed import ManagedProcess, parse_signal
from trio_exec.process.spawn import DEFAULT_COLS, DEFAULT_ROWS, SpawnRequest
from trio_exec.process.table import ProcessTable
from trio_exec.proto import errors
from trio_exec.proto.convert import CONVERTER
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.proto.process_messages import TerminalSize
from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.types import AbsPath
from trio_exec.sandbox.access import for_policy

#: Each long-poll of a local process's log lasts at most this long before it is renewed.
LONG_POLL_MS = 60_000


async def _no_notifications(event: ProcessEvent) -> None:
    """A local environment has no connection: its consumers read the log instead."""
    del event


@attrs.define(eq=False)
class LocalExecProcess:
    """Invariants: only `receive` (under `_lock`) moves `_cursor`; `_polls` holds the scope
    of every log read in progress, so `abandon` can end them."""

    _managed: ManagedProcess
    _cursor: OutputCursor = attrs.field(init=False)
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _failure: ClientError | None = None
    _abandoned: ProcessLost | None = None
    _polls: set[trio.CancelScope] = attrs.field(factory=set)

    def __attrs_post_init__(self) -> None:
        self._cursor = OutputCursor(self._managed.process_id)

    @property
    def process_id(self) -> str:
        return self._managed.process_id

    @property
    def has_exited(self) -> bool:
        return self._managed.log.exited

    @property
    def exit_code(self) -> int | None:
        return self._managed.exit_code

    @property
    def signal_name(self) -> str | None:
        return self._managed.signal_name

    @property
    def failure(self) -> str | None:
        return None if self._failure is None else str(self._failure)

    async def receive(self) -> Output | None:
        async with self._lock:
            cursor = self._cursor
            while True:
                item = cursor.pop()
                if item is not None:
                    return item
                if cursor.finished:
                    return None
                if self._failure is not None:
                    raise self._failure
                after = cursor.cursor
                result = await self._read(after)
                if result is None:
                    continue  # abandoned: `_failure` is set
                try:
                    cursor.apply_decoded_read(after, result)
                except OutputLost as lost:
                    self._failure = lost

    async def _read(self, after_seq: int) -> ProcessRead | None:
        """One long-poll of the log; None (with `_failure` set) once the process is abandoned."""
        if self._abandoned is not None:
            self._failure = self._failure or self._abandoned
            return None
        with trio.CancelScope() as scope:
            self._polls.add(scope)
            try:
                return await self._managed.read(after_seq, None, LONG_POLL_MS)
            finally:
                self._polls.discard(scope)
        self._failure = self._failure or self._abandoned
        return None

    def abandon(self, reason: str) -> None:
        """The environment is closing: the process is being killed and will never report its
        end, so every read in progress (and later) ends with `ProcessLost`."""
        if self._abandoned is None:
            self._abandoned = ProcessLost(f"process {self.process_id} lost: {reason}")
        for scope in list(self._polls):
            scope.cancel()

    def output(self) -> OutputIterator:
        return OutputIterator(self)

    async def wait(self) -> int:
        managed = self._managed
        while not managed.log.exited:
            if await self._read(managed.log.last_seq) is None and not managed.log.exited:
                assert self._abandoned is not None
                raise self._abandoned
        assert managed.exit_code is not None
        return managed.exit_code

    async def write(self, data: bytes, *, close_stdin: bool = False) -> str:
        return await self._managed.write(data, close_stdin=close_stdin)

    async def terminate(self) -> bool:
        return self._managed.terminate()

    async def send_signal(self, signal: str) -> bool:
        sig = parse_signal(signal)
        if sig is None:
            raise errors.unknown_signal(signal)
        return self._managed.send_signal(sig)

    async def resize(self, rows: int, cols: int) -> None:
        if not self._managed.resize(rows, cols):
            raise errors.no_terminal(self.process_id)


@attrs.define(eq=False)
class LocalExec:
    _table: ProcessTable
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _started: weakref.WeakSet[LocalExecProcess] = attrs.field(factory=weakref.WeakSet)
    _closed: bool = False

    async def start(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: dict[str, str],
        tty: bool = False,
        arg0: str | None = None,
        pipe_stdin: bool = False,
        size: TerminalSize | None = None,
    ) -> LocalExecProcess:
        if self._closed:
            raise ProcessLost("the local environment is closed")
        if not argv:
            raise errors.InvalidParams("argv must not be empty")
        request = SpawnRequest(
            argv=list(argv), cwd=cwd, env=dict(env), tty=tty, arg0=arg0, pipe_stdin=pipe_stdin,
            rows=size.rows if size else DEFAULT_ROWS, cols=size.cols if size else DEFAULT_COLS,
        )
        managed = await self._table.start(str(next(self._ids)), request)
        managed.publish()
        process = LocalExecProcess(managed)
        self._started.add(process)
        return process

    def close(self) -> None:
        self._closed = True
        for process in list(self._started):
            if not process._managed.log.closed:
                process.abandon("the local environment was closed")


def _absolute(path: str) -> str:
    """The wire's `AbsolutePathBuf` rule: absolute or -32602, normalised lexically."""
    return str(CONVERTER.structure(path, AbsPath))


@attrs.define(eq=False)
class LocalFiles:
    """`LocalFilesystem` behind the same path rule as the daemon's `fs/*` params; a
    `sandboxPolicy` is judged as a 0.120 request's is (`sandbox/access.py`)."""

    _fs: LocalFilesystem

    async def read_file(self, path: str, *, sandbox: SandboxPolicy | None = None) -> bytes:
        return await self._fs.read_file(_absolute(path), policy=for_policy(sandbox))

    async def write_file(
        self, path: str, data: bytes, *, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self._fs.write_file(_absolute(path), data, policy=for_policy(sandbox))

    async def create_directory(
        self, path: str, *, recursive: bool = True, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self._fs.create_directory(
            _absolute(path), recursive=recursive, policy=for_policy(sandbox)
        )

    async def get_metadata(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> FsGetMetadataResult:
        return await self._fs.get_metadata(_absolute(path), policy=for_policy(sandbox))

    async def read_directory(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> list[FsDirectoryEntry]:
        return await self._fs.read_directory(_absolute(path), policy=for_policy(sandbox))

    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        await self._fs.remove(
            _absolute(path), recursive=recursive, force=force, policy=for_policy(sandbox)
        )

    async def copy(
        self, source: str, destination: str, *, recursive: bool, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self._fs.copy(
            _absolute(source), _absolute(destination), recursive=recursive,
            policy=for_policy(sandbox)
        )


@asynccontextmanager
async def open_local_environment(
    fs: LocalFilesystem | None = None,
) -> AsyncIterator[Environment]:
    """The local environment, for the duration of the block."""
    async with trio.open_nursery() as nursery:
        table = ProcessTable(nursery, _no_notifications)
        local_exec = LocalExec(table)
        try:
            yield Environment(
                kind="local",
                capabilities=Capabilities(exec_enabled=True, filesystem_enabled=True),
                exec=local_exec,
                filesystem=LocalFiles(fs if fs is not None else LocalFilesystem()),
            )
        finally:
            local_exec.close()
            nursery.cancel_scope.cancel()
