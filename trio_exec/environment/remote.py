"""The remote environment: a thin proxy over `ExecClient`, nothing more.

Rule: every call is one client call with the same arguments; the remote process object is the
client's `RemoteProcess` itself (it already has the `ExecProcess` shape). Capabilities come
from the server's `initialize` result (`exec` / `filesystem`), both on when it says nothing
(the reference server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs

from trio_exec.client.client import DEFAULT_RECONNECT, ExecClient, open_client
from trio_exec.client.process import RemoteProcess
from trio_exec.client.session import ReconnectPolicy
from trio_exec.environment.base import Capabilities, Environment
from trio_exec.proto.fs_messages import FsDirectoryEntry, FsGetMetadataResult
from trio_exec.proto.process_messages import TerminalSize
from trio_exec.proto.sandbox import SandboxPolicy


@attrs.define(eq=False)
class RemoteExec:
    client: ExecClient

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
    ) -> RemoteProcess:
        return await self.client.process_start(
            list(argv), cwd=cwd, env=dict(env), tty=tty, arg0=arg0,
            pipe_stdin=pipe_stdin or None, size=size,
        )


@attrs.define(eq=False)
class RemoteFiles:
    client: ExecClient

    async def read_file(self, path: str, *, sandbox: SandboxPolicy | None = None) -> bytes:
        return await self.client.fs_read_file(path, sandbox=sandbox)

    async def write_file(
        self, path: str, data: bytes, *, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self.client.fs_write_file(path, data, sandbox=sandbox)

    async def create_directory(
        self, path: str, *, recursive: bool = True, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self.client.fs_create_directory(path, recursive=recursive, sandbox=sandbox)

    async def get_metadata(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> FsGetMetadataResult:
        return await self.client.fs_get_metadata(path, sandbox=sandbox)

    async def read_directory(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> list[FsDirectoryEntry]:
        return await self.client.fs_read_directory(path, sandbox=sandbox)

    async def remove(
        self,
        path: str,
        *,
        recursive: bool = True,
        force: bool = True,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        await self.client.fs_remove(path, recursive=recursive, force=force, sandbox=sandbox)

    async def copy(
        self, source: str, destination: str, *, recursive: bool, sandbox: SandboxPolicy | None = None
    ) -> None:
        await self.client.fs_copy(source, destination, recursive=recursive, sandbox=sandbox)


def remote_environment(client: ExecClient, url: str | None = None) -> Environment:
    caps = client.capabilities
    return Environment(
        kind="remote",
        capabilities=Capabilities(
            exec_enabled=bool(caps.get("exec", True)),
            filesystem_enabled=bool(caps.get("filesystem", True)),
        ),
        exec=RemoteExec(client),
        filesystem=RemoteFiles(client),
        url=url,
    )


@asynccontextmanager
async def open_remote_environment(
    url: str,
    *,
    client_name: str = "trio-exec-environment",
    auth_token: str | None = None,
    reconnect: ReconnectPolicy | None = DEFAULT_RECONNECT,
) -> AsyncIterator[Environment]:
    """Connect to the exec-server at `url` for the duration of the block."""
    async with open_client(
        url, client_name=client_name, auth_token=auth_token, reconnect=reconnect
    ) as client:
        yield remote_environment(client, url)
