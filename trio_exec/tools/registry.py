"""`ToolSet`: the tools an environment supports, and the one way to call them.

Rules:
- Built once per environment; `registered()` is every tool, `specs()` only those whose
  capability is on. The capabilities (the seeds' gating): `exec_command`, `write_stdin`,
  `js_repl` and `js_repl_reset` need exec; `apply_patch`, `list_dir`, `view_image` and
  `read_file` need the filesystem; a disabled environment has neither, so offers nothing.
- `check()` rejects a name that is not offered with `ToolRejected` and arguments that do not
  fit the schema with `ToolArgumentError`; `call()` checks first, so nothing runs for a
  rejected call, and returns the handler's reply, or its failure, as a `ToolResult`.

Cancellation: leaving `open_toolset` terminates the commands still running and the js_repl
kernel.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from trio_exec.client.errors import ClientError
from trio_exec.environment.base import Environment, EnvironmentUnavailable
from trio_exec.proto.errors import RpcError
from trio_exec.tools.exec_tools import DEFAULT_SHELL, ExecTools
from trio_exec.tools.fs_tools import FileTools
from trio_exec.tools.image_tools import ImageTools
from trio_exec.tools.js_repl import JsRepl
from trio_exec.tools.patch_tool import APPLY_PATCH_DESCRIPTION, PatchTool
from trio_exec.tools.spec import (
    EXEC,
    FILESYSTEM,
    Reply,
    ToolError,
    ToolRejected,
    ToolResult,
    ToolSpec,
    capability_enabled,
    check_args,
    schema,
)

_TOKENS = ("number", "Output token budget. Defaults to 10000 tokens; the middle of longer "
           "output is cut.")


@attrs.define(eq=False)
class ToolSet:
    env: Environment
    _all: dict[str, ToolSpec]
    exec_tools: ExecTools
    js: JsRepl

    def registered(self) -> list[ToolSpec]:
        """Every tool, offered or not."""
        return list(self._all.values())

    def specs(self) -> list[ToolSpec]:
        """The tools offered in this environment."""
        return [s for s in self._all.values() if capability_enabled(self.env, s.capability)]

    def names(self) -> list[str]:
        return [s.name for s in self.specs()]

    def check(self, name: str, args: Mapping[str, Any]) -> ToolSpec:
        """The tool, if it is offered and `args` fit its schema; raises otherwise."""
        spec = self._all.get(name)
        if spec is None:
            raise ToolRejected(f"unknown tool `{name}`")
        if not capability_enabled(self.env, spec.capability):
            raise ToolRejected(
                f"tool `{name}` is not offered: {spec.capability} is disabled in the "
                f"{self.env.kind} environment"
            )
        check_args(spec, args)
        return spec

    async def call(self, name: str, args: Mapping[str, Any]) -> ToolResult:
        """Raises `ToolRejected` for a tool that is not offered; every other failure is a
        `ToolResult` with ok=False."""
        try:
            spec = self.check(name, args)
            reply = await spec.handler(args)
        except (ToolError, RpcError, ClientError, EnvironmentUnavailable) as exc:
            return ToolResult(ok=False, text=str(exc))
        if isinstance(reply, Reply):
            return ToolResult(ok=True, text=reply.text, image=reply.image)
        return ToolResult(ok=True, text=reply)


def _build(exec_tools: ExecTools, files: FileTools, images: ImageTools,
           js: JsRepl) -> dict[str, ToolSpec]:
    specs = [
        ToolSpec(
            name="exec_command",
            description="Runs a command in a PTY, returning output or a session ID for ongoing "
            "interaction.",
            parameters=schema({"cmd": ("string", "Shell command to execute.")}, {
                "workdir": ("string", "Working directory for the command. Defaults to the "
                            "turn cwd."),
                "shell": ("string", "Shell binary to launch. Defaults to /bin/sh."),
                "tty": ("boolean", "True allocates a PTY for the command; false or omitted "
                        "uses plain pipes."),
                "yield_time_ms": ("number", "Wait before yielding output. Defaults to 10000 "
                                  "ms; effective range is 250-30000 ms."),
                "max_output_tokens": _TOKENS,
            }),
            capability=EXEC,
            handler=exec_tools.exec_command,
        ),
        ToolSpec(
            name="write_stdin",
            description="Writes characters to an existing unified exec session and returns "
            "recent output.",
            parameters=schema({"session_id": ("number", "Identifier of the running unified "
                                              "exec session.")}, {
                "chars": ("string", "Bytes to write to stdin. Defaults to empty, which polls "
                          "without writing."),
                "yield_time_ms": ("number", "Wait before yielding output. Non-empty writes "
                                  "default to 250 ms and cap at 30000 ms; empty polls wait "
                                  "5000-300000 ms."),
                "max_output_tokens": _TOKENS,
            }),
            capability=EXEC,
            handler=exec_tools.write_stdin,
        ),
        ToolSpec(
            name="js_repl",
            description="Runs JavaScript in a persistent Node kernel with top-level await. "
            "Bindings persist between calls; returns what the code printed and the value of "
            "its last expression, or the error with its stack.",
            parameters=schema({"code": ("string", "JavaScript source text. A first line "
                                        "`// codex-js-repl: timeout_ms=N` sets the time "
                                        "limit.")}, {
                "timeout_ms": ("number", "Time limit in milliseconds (default 30000); when it "
                               "passes the kernel is reset."),
            }),
            capability=EXEC,
            handler=js.js_repl,
        ),
        ToolSpec(
            name="js_repl_reset",
            description="Restarts the js_repl kernel and clears persisted top-level bindings.",
            parameters=schema({}),
            capability=EXEC,
            handler=js.js_repl_reset,
        ),
        ToolSpec(
            name="list_dir",
            description="Lists entries in a local directory with 1-indexed entry numbers and "
            "simple type labels.",
            parameters=schema({"dir_path": ("string", "Path to the directory to list.")}, {
                "offset": ("number", "The entry number to start listing from. Must be 1 or "
                           "greater."),
                "limit": ("number", "The maximum number of entries to return."),
                "depth": ("number", "The maximum directory depth to traverse. Must be 1 or "
                          "greater."),
            }),
            capability=FILESYSTEM,
            handler=files.list_dir,
        ),
        ToolSpec(
            name="read_file",
            description="Reads a local file with 1-indexed line numbers.",
            parameters=schema({"file_path": ("string", "Path to the file.")}, {
                "offset": ("number", "The line number to start reading from. Must be 1 or "
                           "greater."),
                "limit": ("number", "The maximum number of lines to return."),
            }),
            capability=FILESYSTEM,
            handler=files.read_file,
        ),
        ToolSpec(
            name="view_image",
            description="View a local image file from the filesystem when visual inspection "
            "is needed. Use this for images already available on disk.",
            parameters=schema({"path": ("string", "Local filesystem path to an image file.")}),
            capability=FILESYSTEM,
            handler=images.view_image,
        ),
        ToolSpec(
            name="apply_patch",
            description=APPLY_PATCH_DESCRIPTION,
            parameters=schema({"input": ("string", "The entire contents of the apply_patch command.")}),
            capability=FILESYSTEM,
            handler=PatchTool(files.env, files.cwd).apply_patch,
        ),
    ]
    return {s.name: s for s in specs}


@asynccontextmanager
async def open_toolset(
    env: Environment,
    *,
    cwd: str,
    env_vars: Mapping[str, str] | None = None,
    shell: str = DEFAULT_SHELL,
) -> AsyncIterator[ToolSet]:
    """The tools for `env`; commands get `env_vars` (default: this process's environment,
    as codex passes its own), run in `cwd` (a path in the environment) under `shell`."""
    variables = dict(os.environ if env_vars is None else env_vars)
    async with trio.open_nursery() as nursery:
        exec_tools = ExecTools(env, cwd, variables, nursery, shell)
        files = FileTools(env, cwd)
        js = JsRepl(env, cwd, variables)
        tools = ToolSet(env, _build(exec_tools, files, ImageTools(env, files), js),
                        exec_tools, js)
        try:
            yield tools
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await exec_tools.terminate_all()
                await js.close()
            nursery.cancel_scope.cancel()
