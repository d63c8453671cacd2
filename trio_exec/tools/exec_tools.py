"""`exec_command` and `write_stdin`: run commands in the environment, the way codex's unified
exec does: a command runs until it ends or its yield time passes; a command still running
keeps a session id that `write_stdin` uses to feed it and collect more output.

Rules: every running process has one collector task (in the tool set's nursery) that takes
its output, in order, exactly once; a call returns the output collected since the previous
call for that session. Output beyond `max_output_bytes` is cut in the middle, with a marker.
"""

from __future__ import annotations

import contextlib
import itertools
import posixpath
from collections.abc import Mapping
from typing import Any

import attrs
import trio

from ..environment.base import Environment, ExecProcess
from .spec import EXEC, ToolError, require

DEFAULT_YIELD_MS = 10_000
DEFAULT_STDIN_YIELD_MS = 250
DEFAULT_MAX_OUTPUT = 64 * 1024


@attrs.define(eq=False)
class _Running:
    process: ExecProcess
    output: bytearray = attrs.field(factory=bytearray)
    changed: trio.Event = attrs.field(factory=trio.Event)
    done: trio.Event = attrs.field(factory=trio.Event)
    error: str | None = None

    async def collect(self) -> None:
        try:
            async for chunk in self.process.output():
                self.output += chunk.data
                self.changed.set()
                self.changed = trio.Event()
        except Exception as exc:  # the failure is reported in the tool's result
            self.error = str(exc)
        self.done.set()
        self.changed.set()

    def take(self, limit: int) -> str:
        data, self.output = bytes(self.output), bytearray()
        if len(data) > limit:
            head = limit // 2  # and limit - head from the end (data[-0:] would be all of it)
            marker = f"\n[... {len(data) - limit} bytes omitted ...]\n".encode()
            data = data[:head] + marker + data[len(data) - (limit - head):]
        return data.decode("utf-8", errors="replace")


def _limits(tool: str, args: Mapping[str, Any], default_yield_ms: int) -> tuple[int, int]:
    """`yield_time_ms` (>= 0) and `max_output_bytes` (>= 1), checked before anything runs."""
    yield_ms: int = args.get("yield_time_ms", default_yield_ms)
    limit: int = args.get("max_output_bytes", DEFAULT_MAX_OUTPUT)
    if yield_ms < 0:
        raise ToolError(f"{tool}: yield_time_ms must be at least 0")
    if limit < 1:
        raise ToolError(f"{tool}: max_output_bytes must be at least 1")
    return yield_ms, limit


@attrs.define(eq=False)
class ExecTools:
    env: Environment
    cwd: str
    env_vars: dict[str, str]
    nursery: trio.Nursery
    shell: list[str] = attrs.field(factory=lambda: ["/bin/sh", "-c"])
    _sessions: dict[int, _Running] = attrs.field(factory=dict)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    async def exec_command(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        yield_ms, limit = _limits("exec_command", args, DEFAULT_YIELD_MS)
        workdir = args.get("workdir")
        cwd = posixpath.join(self.cwd, workdir) if workdir else self.cwd
        process = await self.env.exec.start(
            [*self.shell, args["cmd"]], cwd=cwd, env=self.env_vars, tty=bool(args.get("tty")),
            pipe_stdin=not args.get("tty"),
        )
        running = _Running(process)
        session_id = next(self._ids)
        self._sessions[session_id] = running
        self.nursery.start_soon(running.collect)
        return await self._report(session_id, running, yield_ms, limit)

    async def write_stdin(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        yield_ms, limit = _limits("write_stdin", args, DEFAULT_STDIN_YIELD_MS)
        session_id = args["session_id"]
        running = self._sessions.get(session_id)
        if running is None:
            raise ToolError(f"write_stdin: no running session {session_id}")
        chars: str = args.get("chars", "")
        if chars:
            status = await running.process.write(chars.encode())
            if status != "accepted":
                raise ToolError(f"write_stdin: session {session_id} does not take input ({status})")
        return await self._report(session_id, running, yield_ms, limit)

    async def _report(self, session_id: int, running: _Running, yield_ms: int, limit: int) -> str:
        with trio.move_on_after(yield_ms / 1000):
            await running.done.wait()
        if running.done.is_set():
            del self._sessions[session_id]
            if running.error is not None:
                head = f"Process failed: {running.error}"
            else:
                head = f"Process exited with code {await running.process.wait()}"
        else:
            head = f"Process running with session ID {session_id}"
        return f"{head}\nOutput:\n{running.take(limit)}"

    async def terminate_all(self) -> None:
        """Cancellation: best effort; a process whose terminate is cut short keeps running."""
        for running in list(self._sessions.values()):
            if not running.done.is_set():
                with contextlib.suppress(Exception):  # the environment may already be gone
                    await running.process.terminate()
        self._sessions.clear()
