"""The disabled environment (`TRIO_EXEC_SERVER_URL=none`): no exec, no filesystem.

Rule: both capabilities are off, so tools are not even offered; every operation that is
called anyway raises `EnvironmentUnavailable` naming the operation and the reason (the
runtime backstop), never a silent no-op.
"""

from __future__ import annotations

from typing import NoReturn

import attrs

from trio_exec.environment.base import (
    Capabilities,
    Environment,
    EnvironmentUnavailable,
    ExecProcess,
)
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.proto.process_messages import TerminalSize
from trio_exec.proto.sandbox import SandboxPolicy

DEFAULT_REASON = "the execution environment is disabled (TRIO_EXEC_SERVER_URL=none)"


@attrs.define(eq=False)
class _Refusing:
    reason: str = DEFAULT_REASON

    def _refuse(self, what: str) -> NoReturn:
        raise EnvironmentUnavailable(f"{what} is not available: {self.reason}")


class DisabledExec(_Refusing):
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
    ) -> ExecProcess:
        self._refuse("exec")


class DisabledFiles(_Refusing):
    async def read_file(self, path: str, *, sandbox: SandboxPolicy | None = None) -> bytes:
        self._refuse("the filesystem")

    async def write_file(
        self, path: str, data: bytes, *, sandbox: SandboxPolicy | None = None
    ) -> None:
        self._refuse("the filesystem")

    async def create_directory(
        self, path: str, *, recursive: bool = True, sandbox: SandboxPolicy | None = None
    ) -> None:
        self._refuse("the filesystem")

    async def get_metadata(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> FsGetMetadataResult:
        self._refuse("the filesystem")

    async def read_directory(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> list[FsDirectoryEntry]:
        self._refuse("the filesystem")

    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        self._refuse("the filesystem")

    async def copy(
        self, source: str, destination: str, *, recursive: bool, sandbox: SandboxPolicy | None = None
    ) -> None:
        self._refuse("the filesystem")


def disabled_environment(reason: str = DEFAULT_REASON) -> Environment:
    return Environment(
        kind="disabled",
        capabilities=Capabilities(exec_enabled=False, filesystem_enabled=False),
        exec=DisabledExec(reason),
        filesystem=DisabledFiles(reason),
    )
