"""`exec_command` and `write_stdin`: run commands in the environment as codex's unified exec
does, with its argument names, defaults, limits and output text.

Rules (checked against the codex 0.169 and 0.171 clients):
- `exec_command` runs `[shell, "-c", cmd]` (shell: the `shell` argument, else the tool set's
  default) in `workdir` (relative to the tool set's directory), with codex's variables for
  non-interactive use laid over the tool set's environment (`EXEC_ENV`). Without `tty` the
  command gets no stdin (writing to it is refused, as codex refuses it); with `tty` it runs on
  a PTY and `write_stdin` types into it.
- A call waits until the command has ended or its yield time has passed: `exec_command`'s
  `yield_time_ms` defaults to 10000 and is clamped to 250..30000; `write_stdin`'s defaults to
  250 and is clamped to 250..30000 when it writes, 5000..300000 when it only polls.
- The reply is codex's text: `Chunk ID`, `Wall time` (4 decimals), `Process exited with code
  N` or `Process running with session ID N`, `Original token count`, then `Output:` and the
  output collected since the previous call, cut to `max_output_tokens` (default 10000) by
  `truncate_output`. Session ids are random in 1000..99999, as codex's are.
- Every running command has one collector task (in the tool set's nursery) that takes its
  output, in order, exactly once; unread output beyond `MAX_BUFFERED` keeps its head and tail.
- Failures read as codex's: `write_stdin failed: Unknown process id N`, `write_stdin failed:
  stdin is closed for this session; ...`, `exec_command failed: <reason>`.
"""

from __future__ import annotations

import contextlib
import posixpath
import random
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from trio_exec.client.errors import ClientError
from trio_exec.environment.base import Environment, ExecProcess
from trio_exec.proto.errors import RpcError
from trio_exec.tools.spec import ARGUMENT_ERROR_PREFIX, EXEC, ToolArgumentError, ToolError, require
from trio_exec.tools.truncate import approx_tokens, truncate_output

DEFAULT_SHELL = "/bin/sh"
DEFAULT_YIELD_MS = 10_000
DEFAULT_STDIN_YIELD_MS = 250
MIN_YIELD_MS, MAX_YIELD_MS = 250, 30_000
MIN_POLL_MS, MAX_POLL_MS = 5_000, 300_000
DEFAULT_MAX_OUTPUT_TOKENS = 10_000
MAX_BUFFERED = 1024 * 1024
#: What the codex 0.169/0.171 clients set for every unified-exec command: a dumb terminal,
#: no pager, a UTF-8 locale (tests/e2e/test_codex_tool_parity.py compares them).
EXEC_ENV = {
    "TERM": "dumb", "LANG": "C.UTF-8", "LC_CTYPE": "C.UTF-8", "LC_ALL": "C.UTF-8",
    "COLORTERM": "", "PAGER": "cat", "GIT_PAGER": "cat", "GH_PAGER": "cat",
}
STDIN_CLOSED = ("stdin is closed for this session; rerun exec_command with tty=true to keep "
                "stdin open")


@attrs.define(eq=False)
class _Running:
    """Invariant: `output` holds what was produced and not yet reported, at most
    `MAX_BUFFERED` bytes (head and tail kept)."""

    process: ExecProcess
    tty: bool
    output: bytearray = attrs.field(factory=bytearray)
    done: trio.Event = attrs.field(factory=trio.Event)
    error: str | None = None

    async def collect(self) -> None:
        try:
            async for chunk in self.process.output():
                self.output += chunk.data
                if len(self.output) > MAX_BUFFERED:
                    half = MAX_BUFFERED // 2
                    del self.output[half : len(self.output) - half]
        except (ClientError, RpcError) as exc:  # the failure is reported in the tool's result
            self.error = str(exc)
        finally:
            self.done.set()

    def take(self) -> str:
        data, self.output = bytes(self.output), bytearray()
        return data.decode("utf-8", errors="replace")


def _number(args: Mapping[str, Any], name: str, default: int) -> int:
    value: int = args.get(name, default)
    if value < 0:
        raise ToolArgumentError(f"{ARGUMENT_ERROR_PREFIX}`{name}` must be at least 0, got {value}")
    return value


def _chunk_id() -> str:
    return f"{random.randrange(16**6):06x}"


@attrs.define(eq=False)
class ExecTools:
    env: Environment
    cwd: str
    env_vars: dict[str, str]
    nursery: trio.Nursery
    shell: str = DEFAULT_SHELL
    _sessions: dict[int, _Running] = attrs.field(factory=dict)

    def _new_session_id(self) -> int:
        while True:
            candidate = random.randrange(1000, 100_000)
            if candidate not in self._sessions:
                return candidate

    async def exec_command(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        yield_ms = min(max(_number(args, "yield_time_ms", DEFAULT_YIELD_MS), MIN_YIELD_MS),
                       MAX_YIELD_MS)
        max_tokens = _number(args, "max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)
        workdir = args.get("workdir")
        cwd = posixpath.normpath(posixpath.join(self.cwd, workdir)) if workdir else self.cwd
        tty = bool(args.get("tty", False))
        argv = [args.get("shell") or self.shell, "-c", args["cmd"]]
        try:
            process = await self.env.exec.start(
                argv, cwd=cwd, env={**self.env_vars, **EXEC_ENV}, tty=tty
            )
        except (RpcError, ClientError) as exc:
            raise ToolError(f"exec_command failed: {exc}") from None
        running = _Running(process, tty)
        session_id = self._new_session_id()
        self._sessions[session_id] = running
        self.nursery.start_soon(running.collect)
        return await self._report("exec_command", session_id, running, yield_ms, max_tokens)

    async def write_stdin(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        chars: str = args.get("chars", "")
        requested = _number(args, "yield_time_ms", DEFAULT_STDIN_YIELD_MS)
        if chars:
            yield_ms = min(max(requested, MIN_YIELD_MS), MAX_YIELD_MS)
        else:
            yield_ms = min(max(requested, MIN_POLL_MS), MAX_POLL_MS)
        max_tokens = _number(args, "max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS)
        session_id = args["session_id"]
        running = self._sessions.get(session_id)
        if running is None:
            raise ToolError(f"write_stdin failed: Unknown process id {session_id}")
        if chars:
            if not running.tty:
                raise ToolError(f"write_stdin failed: {STDIN_CLOSED}")
            try:
                status = await running.process.write(chars.encode())
            except (RpcError, ClientError) as exc:
                raise ToolError(f"write_stdin failed: {exc}") from None
            if status != "accepted" and not running.process.has_exited:
                raise ToolError("write_stdin failed: failed to write to stdin")
        return await self._report("write_stdin", session_id, running, yield_ms, max_tokens)

    async def _report(
        self, tool: str, session_id: int, running: _Running, yield_ms: int, max_tokens: int
    ) -> str:
        started = trio.current_time()
        with trio.move_on_after(yield_ms / 1000):
            await running.done.wait()
        wall = trio.current_time() - started
        text = running.take()
        if running.done.is_set():
            del self._sessions[session_id]
            if running.error is not None:
                raise ToolError(f"{tool} failed: {running.error}")
            status = f"Process exited with code {await running.process.wait()}"
        else:
            status = f"Process running with session ID {session_id}"
        return "\n".join([
            f"Chunk ID: {_chunk_id()}",
            f"Wall time: {wall:.4f} seconds",
            status,
            f"Original token count: {approx_tokens(text)}",
            "Output:",
            truncate_output(text, max_tokens),
        ])

    async def terminate_all(self) -> None:
        """Cancellation: best effort; a process whose terminate is cut short keeps running."""
        for running in list(self._sessions.values()):
            if not running.done.is_set():
                with contextlib.suppress(Exception):  # the environment may already be gone
                    await running.process.terminate()
        self._sessions.clear()
