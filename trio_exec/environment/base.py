"""The `Environment` seam: where commands run and files live, behind one interface.

Rule (the seed's shape): each service is an interface (`ExecBackend`, `FileSystem`) with a
local implementation (the daemon's own code, called in-process), a remote one (a thin proxy
over the client), and a disabled one; the daemon's handlers call the same local code. Callers
see no difference except `Environment.kind`, and check `capabilities` before offering a
service. Errors are the wire's `RpcError` classes in every implementation (a missing file is
`NotFound("No such file or directory (os error 2)")` locally and remotely).
"""

from __future__ import annotations

from typing import Protocol

import attrs

from trio_exec.client.cursor import Output, OutputIterator
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.proto.process_messages import TerminalSize
from trio_exec.proto.sandbox import SandboxPolicy


class EnvironmentUnavailable(Exception):
    """The service is switched off in this environment (`TRIO_EXEC_SERVER_URL=none`, or a
    server without it); `str(err)` says which and why."""


@attrs.frozen(kw_only=True)
class Capabilities:
    exec_enabled: bool
    filesystem_enabled: bool


class ExecProcess(Protocol):
    """One started process. Output is handed out exactly once, in order; `receive()` returns
    None at the end and raises the process's failure (output that can no longer be read)."""

    @property
    def process_id(self) -> str: ...
    @property
    def has_exited(self) -> bool: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def signal_name(self) -> str | None: ...
    @property
    def failure(self) -> str | None: ...

    async def receive(self) -> Output | None: ...
    def output(self) -> OutputIterator: ...
    async def write(self, data: bytes, *, close_stdin: bool = False) -> str: ...
    async def terminate(self) -> bool: ...
    async def send_signal(self, signal: str) -> bool: ...
    async def resize(self, rows: int, cols: int) -> None: ...
    async def wait(self) -> int: ...


class ExecBackend(Protocol):
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
    ) -> ExecProcess: ...


class FileSystem(Protocol):
    """The `fs/*` service. The local one (`environment/local.py`) is `LocalFilesystem` with a
    `sandboxPolicy` judged as a 0.120 request's is."""

    async def read_file(self, path: str, *, sandbox: SandboxPolicy | None = None) -> bytes: ...
    async def write_file(
        self, path: str, data: bytes, *, sandbox: SandboxPolicy | None = None
    ) -> None: ...
    async def create_directory(
        self, path: str, *, recursive: bool = True, sandbox: SandboxPolicy | None = None
    ) -> None: ...
    async def get_metadata(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> FsGetMetadataResult: ...
    async def read_directory(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> list[FsDirectoryEntry]: ...
    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        sandbox: SandboxPolicy | None = None,
    ) -> None: ...
    async def copy(
        self, source: str, destination: str, *, recursive: bool, sandbox: SandboxPolicy | None = None
    ) -> None: ...


@attrs.frozen(kw_only=True)
class Environment:
    """`kind` is "local", "remote" or "disabled"; `url` is the server's for a remote one."""

    kind: str
    capabilities: Capabilities
    exec: ExecBackend
    filesystem: FileSystem
    url: str | None = None
