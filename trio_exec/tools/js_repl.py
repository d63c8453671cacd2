"""`js_repl {code, timeout_ms?}` and `js_repl_reset {}`: a persistent Node.js kernel that runs
where the commands run.

Rules:
- The kernel is `node -e <js_kernel.js>`, started through the environment's exec (so a remote
  environment runs it on the server) in the tool set's directory with its variables, on the
  first call and again after a reset. No `node` there is a clear error, not a crash.
- The protocol (js_kernel.js states it): the first stdin line is a random token only this side
  and the kernel know; requests are JSON lines; a reply is a stdout line starting with
  "\\x1e<token>:" whose JSON carries the request's id. The code's own printing is captured by the
  kernel into the reply, and any other stdout or stderr bytes are kept as printed output: no
  output, however protocol-like, can pass for a reply. Raw stderr bytes travel on their own
  pipe and may arrive after the reply: they are kept and shown with the next call's output.
- Calls run one at a time. A call returns the printed output and then the value (omitted when
  it is undefined), or fails with the printed output and the error's stack. Its time limit is
  `timeout_ms` (default 30000), or codex's first-line pragma `// codex-js-repl: timeout_ms=N`;
  when it passes, the kernel is killed and the next call starts a fresh one, and the failure
  says so (codex's text: "js_repl execution timed out; kernel reset, rerun your request").
- Output is cut to 10000 tokens like every tool's (`truncate_output`).

Resource handling: the kernel is terminated by `js_repl_reset`, by a timeout, and when the tool
set closes (`close`).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs
import orjson
import trio

from trio_exec.client.errors import ClientError
from trio_exec.environment.base import Environment, ExecProcess
from trio_exec.proto.errors import RpcError
from trio_exec.tools.spec import ARGUMENT_ERROR_PREFIX, EXEC, ToolArgumentError, ToolError, require
from trio_exec.tools.truncate import truncate_output

DEFAULT_TIMEOUT_MS = 30_000
MAX_OUTPUT_TOKENS = 10_000
TIMED_OUT = "js_repl execution timed out; kernel reset, rerun your request"
PRAGMA = re.compile(r"^[ \t]*// codex-js-repl:(?P<args>[^\n]*)(\n|$)")
KERNEL_SOURCE = resources.files(__package__).joinpath("js_kernel.js").read_text("utf-8")


class _KernelGone(Exception):
    """The kernel's output ended before it answered."""


@attrs.define(eq=False)
class _Kernel:
    """One running node process. Invariant: `pending` holds stdout/stderr bytes not yet
    attributed: stray output and at most one reply still arriving."""

    process: ExecProcess
    mark: bytes
    pending: bytearray = attrs.field(factory=bytearray)
    request_id: int = 0

    async def ask(self, code: str) -> tuple[dict[str, Any], str]:
        """Send `code`; return the reply and the stray output that came before it."""
        self.request_id += 1
        line = orjson.dumps({"id": self.request_id, "code": code}) + b"\n"
        if await self.process.write(line) != "accepted":
            raise _KernelGone()
        stray = bytearray()
        while True:
            reply = self._next_reply(stray)
            if reply is not None:
                return reply, stray.decode("utf-8", "replace")
            chunk = await self.process.receive()
            if chunk is None:
                stray += self.pending
                self.pending.clear()
                raise _KernelGone(stray.decode("utf-8", "replace"))
            self.pending += chunk.data

    def _next_reply(self, stray: bytearray) -> dict[str, Any] | None:
        """Take the first complete reply to this request out of `pending`; what precedes it
        goes to `stray` (less the newline the kernel writes before every reply)."""
        while True:
            start = self.pending.find(self.mark)
            if start < 0:
                keep = len(self.mark) - 1  # the start of a mark may still be arriving
                cut = max(len(self.pending) - keep, 0)
                stray += self.pending[:cut]
                del self.pending[:cut]
                return None
            end = self.pending.find(b"\n", start)
            if end < 0:
                stray += self.pending[:start]
                del self.pending[:start]
                return None
            before = self.pending[:start]
            body = bytes(self.pending[start + len(self.mark) : end])
            del self.pending[: end + 1]
            try:
                reply = orjson.loads(body)
            except orjson.JSONDecodeError:
                reply = None
            if isinstance(reply, dict) and reply.get("id") == self.request_id:
                stray += before.removesuffix(b"\n")
                return reply
            stray += before + self.mark + body + b"\n"


def _timeout_ms(args: Mapping[str, Any], code: str) -> tuple[int, str]:
    """The time limit and the code without codex's pragma line."""
    timeout: int = args.get("timeout_ms", DEFAULT_TIMEOUT_MS)
    pragma = PRAGMA.match(code)
    if pragma is not None:
        code = code[pragma.end():]
        for item in pragma.group("args").replace(",", " ").split():
            key, _, value = item.partition("=")
            if key != "timeout_ms" or not value.isdigit():
                raise ToolArgumentError(
                    f"{ARGUMENT_ERROR_PREFIX}js_repl pragma expects timeout_ms=<integer>, "
                    f"got `{item}`")
            if "timeout_ms" not in args:
                timeout = int(value)
    if timeout < 1:
        raise ToolArgumentError(f"{ARGUMENT_ERROR_PREFIX}`timeout_ms` must be at least 1")
    return timeout, code


@attrs.define(eq=False)
class JsRepl:
    env: Environment
    cwd: str
    env_vars: dict[str, str]
    _kernel: _Kernel | None = None
    _lock: trio.Lock = attrs.field(factory=trio.Lock)

    async def js_repl(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        timeout_ms, code = _timeout_ms(args, args["code"])
        async with self._lock:
            kernel = self._kernel or await self._start()
            reply: dict[str, Any] | None = None
            with trio.move_on_after(timeout_ms / 1000):
                try:
                    reply, stray = await kernel.ask(code)
                except _KernelGone as gone:
                    await self._discard()
                    printed = str(gone.args[0]) if gone.args else ""
                    raise ToolError(truncate_output(
                        f"{printed}js_repl kernel exited (code {kernel.process.exit_code}); "
                        "a new kernel starts on the next call", MAX_OUTPUT_TOKENS)) from None
                except (RpcError, ClientError) as exc:
                    await self._discard()
                    raise ToolError(f"js_repl failed: {exc}") from None
            if reply is None:
                await self._discard()
                raise ToolError(TIMED_OUT)
        printed = stray + str(reply.get("output") or "")
        if reply.get("ok"):
            value = reply.get("value")
            text = printed + (f"{value}\n" if value is not None else "")
            return truncate_output(text, MAX_OUTPUT_TOKENS)
        raise ToolError(truncate_output(f"{printed}Uncaught {reply.get('error')}",
                                        MAX_OUTPUT_TOKENS))

    async def js_repl_reset(self, args: Mapping[str, Any]) -> str:
        require(self.env, EXEC)
        async with self._lock:
            await self._discard()
        return "js_repl kernel reset; top-level bindings are cleared"

    async def _start(self) -> _Kernel:
        try:
            process = await self.env.exec.start(
                ["node", "-e", KERNEL_SOURCE], cwd=self.cwd, env=self.env_vars, pipe_stdin=True
            )
        except (RpcError, ClientError) as exc:
            path = self.env_vars.get("PATH", "(unset)")
            raise ToolError(
                f"js_repl needs Node.js: `node` could not be started in the {self.env.kind} "
                f"environment ({exc}; PATH={path})"
            ) from None
        token = secrets.token_hex(16)
        kernel = _Kernel(process, b"\x1e" + token.encode() + b":")
        if await process.write(token.encode() + b"\n") != "accepted":
            with contextlib.suppress(RpcError, ClientError):
                await process.terminate()
            raise ToolError("js_repl: the node kernel does not accept input")
        self._kernel = kernel
        return kernel

    async def _discard(self) -> None:
        kernel, self._kernel = self._kernel, None
        if kernel is not None and not kernel.process.has_exited:
            with trio.CancelScope(shield=True), contextlib.suppress(RpcError, ClientError):
                await kernel.process.terminate()

    async def close(self) -> None:
        """Cancellation: shielded; the kernel is terminated even if the caller is cancelled."""
        await self._discard()
