"""`ToolSet`: the tools an environment supports, and the one way to call them.

Rule: built once per environment; `specs()` lists only the tools whose capability is on;
`call()` rejects any other name with `ToolRejected` before anything runs, checks the
arguments against the schema, and returns the handler's text or its failure as a
`ToolResult`.

Cancellation: leaving `open_toolset` terminates the commands still running.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ..client.errors import ClientError
from ..environment.base import Environment, EnvironmentUnavailable
from ..proto.errors import RpcError
from .exec_tools import ExecTools
from .fs_tools import FileTools
from .patch_tool import APPLY_PATCH_DESCRIPTION, PatchTool
from .spec import (
    EXEC,
    FILESYSTEM,
    ToolError,
    ToolRejected,
    ToolResult,
    ToolSpec,
    capability_enabled,
    check_args,
    schema,
)


@attrs.define(eq=False)
class ToolSet:
    env: Environment
    _all: dict[str, ToolSpec]
    exec_tools: ExecTools

    def specs(self) -> list[ToolSpec]:
        """The tools offered in this environment."""
        return [s for s in self._all.values() if capability_enabled(self.env, s.capability)]

    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        spec = self._all.get(name)
        if spec is None:
            raise ToolRejected(f"unknown tool `{name}`")
        if not capability_enabled(self.env, spec.capability):
            raise ToolRejected(
                f"tool `{name}` is not offered: {spec.capability} is disabled in the "
                f"{self.env.kind} environment"
            )
        try:
            check_args(spec, args)
            return ToolResult(ok=True, text=await spec.handler(args))
        except (ToolError, RpcError, ClientError, EnvironmentUnavailable) as exc:
            return ToolResult(ok=False, text=str(exc))


def _build(env: Environment, exec_tools: ExecTools, files: FileTools) -> dict[str, ToolSpec]:
    specs = [
        ToolSpec(
            name="exec_command",
            description="Run a shell command; returns its output, or a session id if it is "
            "still running after yield_time_ms.",
            parameters=schema({"cmd": "string"}, {"workdir": "string", "tty": "boolean",
                                                  "yield_time_ms": "integer",
                                                  "max_output_bytes": "integer"}),
            capability=EXEC,
            handler=exec_tools.exec_command,
        ),
        ToolSpec(
            name="write_stdin",
            description="Write characters to a running session and return its new output.",
            parameters=schema({"session_id": "integer"}, {"chars": "string",
                                                          "yield_time_ms": "integer",
                                                          "max_output_bytes": "integer"}),
            capability=EXEC,
            handler=exec_tools.write_stdin,
        ),
        ToolSpec(
            name="read_file",
            description="Read a text file, as numbered lines.",
            parameters=schema({"path": "string"}, {"offset": "integer", "limit": "integer"}),
            capability=FILESYSTEM,
            handler=files.read_file,
        ),
        ToolSpec(
            name="write_file",
            description="Create or replace a file with the given content.",
            parameters=schema({"path": "string", "content": "string"}),
            capability=FILESYSTEM,
            handler=files.write_file,
        ),
        ToolSpec(
            name="list_dir",
            description="List a directory (directories end with /).",
            parameters=schema({"path": "string"}),
            capability=FILESYSTEM,
            handler=files.list_dir,
        ),
        ToolSpec(
            name="edit_file",
            description="Replace the one occurrence of old_string in a file with new_string.",
            parameters=schema({"path": "string", "old_string": "string", "new_string": "string"}),
            capability=FILESYSTEM,
            handler=files.edit_file,
        ),
        ToolSpec(
            name="apply_patch",
            description=APPLY_PATCH_DESCRIPTION,
            parameters=schema({"input": "string"}),
            capability=FILESYSTEM,
            handler=PatchTool(env, files.cwd).apply_patch,
        ),
    ]
    return {s.name: s for s in specs}


@asynccontextmanager
async def open_toolset(
    env: Environment, *, cwd: str, env_vars: Mapping[str, str] | None = None
) -> AsyncIterator[ToolSet]:
    """The tools for `env`; commands get `env_vars` (default: this process's environment,
    as codex passes its own) and run in `cwd` (a path in the environment)."""
    async with trio.open_nursery() as nursery:
        exec_tools = ExecTools(env, cwd, dict(os.environ if env_vars is None else env_vars), nursery)
        files = FileTools(env, cwd)
        tools = ToolSet(env, _build(env, exec_tools, files), exec_tools)
        try:
            yield tools
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await exec_tools.terminate_all()
            nursery.cancel_scope.cancel()
